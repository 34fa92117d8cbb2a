"""Every behaviour of the real astro CLI, through the local mode: only a real deploy counts as one.

The same CLI behaviours as the deploy step's unit tests (testkit.CLI_OUTCOMES), here run by the real state machine:
the execution fails at Deploy with the step's error, the repo prefix is rolled back, and a notification names
repo, deployment and error -- without the Astro token, which a careless CLI may echo.
"""

import pytest
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from testkit import CLI_OUTCOMES, deploy_example, fake_astro

from local_mode.world import LOCAL_ASTRO_TOKEN, LocalWorld
from cdk.state_machine import ASTRO_UNAVAILABLE
from functions.shared.errors import AstroUnavailable

REPO = "marketing_etl"
# The unit tests' messages name their own Astro deployment: here the behaviour and the error are what count.
BEHAVIOURS = {name: (behaviour, error) for name, (behaviour, error, _message) in CLI_OUTCOMES.items()}


@pytest.mark.parametrize(("behaviour", "error"), BEHAVIOURS.values(), ids=BEHAVIOURS.keys())
def test_a_cli_outcome_that_is_not_a_deploy_fails_the_execution(tmp_path, monkeypatch, behaviour, error):
    # AstroUnavailable is retried with waits of 30 s and more: the retries run, their waits do not.
    monkeypatch.setattr(retrier_decl.time, "sleep", lambda seconds: None)
    with LocalWorld(tmp_path / "out", astro_cli=fake_astro(tmp_path, behaviour)) as world:
        result = deploy_example(world)

        assert (result.status, result.failed_state, result.error) == ("FAILED", "Deploy", error.__name__)
        [deploy] = [visit for visit in result.visits if visit.name == "Deploy"]
        assert deploy.attempts == (1 + ASTRO_UNAVAILABLE.max_attempts if error is AstroUnavailable else 1)
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
