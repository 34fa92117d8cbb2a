"""Every behaviour of the real astro CLI, through the local mode: only a real deploy counts as one.

The same CLI behaviours as the deploy step's unit tests (testkit.CLI_OUTCOMES), here run by the real state machine:
the execution fails at Deploy with the step's error, the repo prefix is rolled back, and a notification names
repo, deployment and error -- without the Astro token, which a careless CLI may echo.
"""

import pytest
from testkit import CLI_OUTCOMES, deploy_example, fake_astro

from local_mode.world import LOCAL_ASTRO_TOKEN, LocalWorld
from functions.deploy import deploying
from functions.shared.errors import AstroUnavailable

REPO = "marketing_etl"
# The unit tests' messages name their own Astro deployment: here the behaviour and the error are what count.
BEHAVIOURS = {name: (behaviour, error) for name, (behaviour, error, _message) in CLI_OUTCOMES.items()}


@pytest.mark.parametrize(("behaviour", "error"), BEHAVIOURS.values(), ids=BEHAVIOURS.keys())
def test_a_cli_outcome_that_is_not_a_deploy_fails_the_execution(tmp_path, monkeypatch, behaviour, error):
    # Deploy tries again after AstroUnavailable, with waits of 30 s and more: the attempts run, their waits do not.
    waits: list[float] = []
    monkeypatch.setattr(deploying, "sleep", waits.append)
    runs = tmp_path / "runs"
    counted = f"open({str(runs)!r}, 'a').write('run\\n')\n{behaviour}"
    with LocalWorld(tmp_path / "out", astro_cli=fake_astro(tmp_path, counted)) as world:
        result = deploy_example(world)

        assert (result.status, result.failed_state, result.error) == ("FAILED", "Deploy", error.__name__)
        [deploy] = [visit for visit in result.visits if visit.name == "Deploy"]
        transient = error is AstroUnavailable
        assert deploy.attempts == 1
        assert len(runs.read_text().splitlines()) == (1 + len(deploying.ASTRO_RETRY_WAITS_SECONDS) if transient else 1)
        assert waits == (list(deploying.ASTRO_RETRY_WAITS_SECONDS) if transient else [])
        assert "Last lines of the astro CLI output (redacted)" in result.cause
        [notification] = result.notifications
        assert f"{REPO} -> analytics/production at Deploy" in notification.subject
        assert f"Error: {error.__name__}" in notification.message
        assert world.dag_keys(f"dags/analytics/production/{REPO}/") == []


def test_a_token_the_cli_echoes_reaches_no_output(tmp_path, capfd):
    echoing = 'print("using token", os.environ["ASTRO_API_TOKEN"]); sys.exit(1)'
    with LocalWorld(tmp_path / "out", astro_cli=fake_astro(tmp_path, echoing)) as world:
        result = deploy_example(world)
        notifications = world.notifications()

    assert result.error == "AstroDeployFailed" and "using token" in result.cause
    captured = capfd.readouterr()
    for text in (result.cause, notifications[0].message, captured.out, captured.err):
        assert LOCAL_ASTRO_TOKEN not in text
