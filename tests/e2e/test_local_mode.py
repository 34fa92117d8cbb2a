"""The local mode end to end: the synthesized state machine on moto, our handlers, the astro stand-in."""

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from astro_dag_deploy.cli import main
from local_mode.project import DEFAULT_SCENARIO, EXAMPLES_DIR
from local_mode.scenario import Outcome, Scenario, run_scenario
from local_mode.world import LocalWorld
from local_mode.requests import folder_files

DEPLOYMENT_ID = "local-production"  # what the local mode maps analytics/production to
DEPLOYMENT_PREFIX = "dags/analytics/production/"
REPOS = ("marketing_etl", "finance_reports")
# The pipeline's steps, in order; the state machine may hold more states between them (a lock, a snapshot).
STEPS = ["Parse", "ClearPrefix", "Upload", "Deploy"]


def in_order(states: list[str], expected: list[str]) -> bool:
    """Whether `expected` were entered in this order (other states may come between them)."""
    remaining = iter(states)
    return all(name in remaining for name in expected)


def succeeded_through_every_step(states: list[str]) -> bool:
    return in_order(states, STEPS) and states[-1] == "Deployed" and "Notify" not in states


def run(world: LocalWorld, *requests: dict, base_dir: Path = EXAMPLES_DIR, concurrent: bool = False) -> list[Outcome]:
    document = {"concurrent": concurrent, "requests": list(requests)}
    return run_scenario(world, Scenario.from_document(document, base_dir))


def example_request(repo: str, dags_dir: str | Path | None = None, **extra) -> dict:
    return {"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
            "dags_dir": str(dags_dir or repo), **extra}


def example_files(repo: str, folder: Path | None = None) -> set[str]:
    return {f"{repo}/{path}" for path in folder_files(folder or EXAMPLES_DIR / repo)}


def dag_versions(world: LocalWorld) -> list[tuple[str, str, bool]]:
    pages = world.client("s3").get_paginator("list_object_versions").paginate(
        Bucket=world.dag_bucket, Prefix="dags/"
    )
    return sorted(
        (entry["Key"], entry["VersionId"], entry["IsLatest"])
        for page in pages
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
    )


def test_the_default_scenario_deploys_both_repos_to_one_bundle_a_third_to_its_own_and_refuses_a_fourth(tmp_path):
    scenario = Scenario.load(DEFAULT_SCENARIO)
    with LocalWorld(tmp_path / "out", context_overrides=scenario.context) as world:
        outcomes = run_scenario(world, scenario)

        assert [outcome.result.status for outcome in outcomes] == ["SUCCEEDED"] * 3 + ["FAILED"]
        assert all(outcome.as_expected for outcome in outcomes)
        assert all(succeeded_through_every_step(outcome.result.states) for outcome in outcomes[:3])
        assert not any(outcome.result.notifications for outcome in outcomes[:3])
        # The refused push: what Airflow would do with it, and how to fix it, before anything changed.
        refused = outcomes[3].result
        assert refused.failed_state == "Parse" and refused.error == "InvalidRequest"
        assert "write `from web_analytics.include.sessions import SESSION_TIMEOUT_MINUTES, sessionize`" in refused.cause
        assert ("dag_id 'marketing_campaign_performance' is already defined by repo 'marketing_etl' (commit "
                "9fceb02d0ae598e95dc970b74767f19372d61af8) in campaign_performance.py") in refused.cause
        both_repos = example_files("marketing_etl") | example_files("finance_reports")
        # One Astro deploy replaces every DAG of the main bundle: the last one must hold both repos.
        assert set(world.astro_bundles()[DEPLOYMENT_ID]) == both_repos
        # The per-repo deployment's bundle holds its repo alone, at the bundle's root.
        churn = {path.removeprefix("customer_churn/") for path in example_files("customer_churn")}
        assert world.astro_dag_bundles()["local-ml"] == {"main": [], "customer_churn": sorted(churn)}
        assert world.dag_keys(DEPLOYMENT_PREFIX) == sorted(DEPLOYMENT_PREFIX + path for path in both_repos)


def test_a_redeploy_without_a_dag_removes_it_from_s3_and_from_the_next_bundle(world, tmp_path):
    run(world, *(example_request(repo) for repo in REPOS))
    trimmed = tmp_path / "marketing_etl"
    shutil.copytree(EXAMPLES_DIR / "marketing_etl", trimmed)
    (trimmed / "email_engagement.py").unlink()

    [outcome] = run(world, example_request("marketing_etl", trimmed))

    assert outcome.result.status == "SUCCEEDED"
    expected = example_files("marketing_etl", trimmed) | example_files("finance_reports")
    assert "marketing_etl/email_engagement.py" not in expected
    assert set(world.astro_bundles()[DEPLOYMENT_ID]) == expected
    assert world.dag_keys("dags/") == sorted(DEPLOYMENT_PREFIX + path for path in expected)


def test_an_invalid_request_fails_at_parse_notifies_and_leaves_s3_untouched(world):
    run(world, example_request("marketing_etl"))
    versions_before, bundle_before = dag_versions(world), world.astro_bundles()
    hostile = {
        "astroWorkspace": "analytics",
        "astroDeployment": "production",
        "repo": "marketing_etl",
        "body": {"dags": [{"dag_id": "escape", "dag_file": "s3://not-allowed-bucket/x.py", "path": "../escape.py"}]},
    }

    [outcome] = run(world, {"event": hostile, "expect": "FAILED"})

    result = outcome.result
    assert outcome.as_expected
    assert (result.error, result.failed_state) == ("InvalidRequest", "Parse")
    assert in_order(result.states, ["Parse", "Parse failed", "Notify"]) and result.states[-1] == "Failed"
    assert not set(STEPS[1:]) & set(result.states), "nothing runs after a refused request"
    assert "'not-allowed-bucket' is not an allowed source" in result.cause
    assert "'..'" in result.cause
    [notification] = result.notifications
    assert "marketing_etl" in notification.subject and "Parse" in notification.subject
    assert "InvalidRequest" in notification.message
    assert dag_versions(world) == versions_before
    assert world.astro_bundles() == bundle_before


def test_a_failing_astro_fails_at_deploy_with_a_notification_naming_repo_deployment_and_error(tmp_path):
    failing_cli = tmp_path / "astro"
    failing_cli.write_text("#!/bin/sh\necho 'Error: the bundle upload was refused by the test' >&2\nexit 1\n")
    failing_cli.chmod(failing_cli.stat().st_mode | stat.S_IXUSR)

    with LocalWorld(tmp_path / "out", astro_cli=failing_cli) as world:
        [outcome] = run(world, example_request("marketing_etl", expect="FAILED"))
        bundles = world.astro_bundles()

    result = outcome.result
    assert outcome.as_expected
    assert (result.error, result.failed_state) == ("AstroDeployFailed", "Deploy")
    assert in_order(result.states, [*STEPS, "Deploy failed", "Notify"]) and result.states[-1] == "Failed"
    [notification] = result.notifications
    assert "marketing_etl" in notification.subject and "analytics/production" in notification.subject
    assert "AstroDeployFailed" in notification.message
    assert DEPLOYMENT_ID in notification.message
    assert "the bundle upload was refused by the test" in notification.message
    assert bundles == {}, "with --astro-cli the project's stand-in is not used"


def test_concurrent_requests_run_at_the_same_time(world):
    outcomes = run(world, *(example_request(repo) for repo in REPOS), concurrent=True)

    assert [outcome.result.status for outcome in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
    first, second = (outcome.result for outcome in outcomes)
    assert first.started < second.stopped and second.started < first.stopped, "the executions did not overlap"


HOSTILE_EVENT = {
    "astroWorkspace": "analytics",
    "astroDeployment": "production",
    "repo": "finance_reports",
    "body": {"dags": [{"dag_id": "x", "dag_file": "s3://not-allowed-bucket/x.py"}]},
}


def test_the_cli_json_report_is_alone_on_stdout_and_the_exit_code_follows_expectations(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"requests": [
        example_request("marketing_etl", EXAMPLES_DIR / "marketing_etl"),
        # Expected to succeed (the default) but refused by Parse: the run must exit 1.
        {"event": HOSTILE_EVENT},
    ]}))
    command = shutil.which("astro-dag-deploy", path=str(Path(sys.executable).parent))
    assert command, "the astro-dag-deploy console script is not installed next to this Python"
    out = tmp_path / "out"

    completed = subprocess.run(
        [command, "local", str(scenario), "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )

    assert completed.returncode == 1, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    good, refused = report["executions"]
    assert (good["repo"], good["status"]) == ("marketing_etl", "SUCCEEDED")
    assert succeeded_through_every_step(good["states"])
    assert (refused["repo"], refused["status"], refused["error"]) == ("finance_reports", "FAILED", "InvalidRequest")
    assert [note["subject"] for note in refused["notifications"]] == [
        "astro-dag-deploy FAILED: finance_reports -> analytics/production at Parse"
    ]
    assert set(report["astro"][DEPLOYMENT_ID]["main"]) == example_files("marketing_etl")
    assert set(report["s3_keys"]) >= {DEPLOYMENT_PREFIX + path for path in example_files("marketing_etl")}
    # The handlers' own JSON logs went to the log file, the progress to stderr.
    assert '"service":"parse"' in (out / "handlers.log").read_text()
    assert "Parse: entered" in completed.stderr


def test_the_cli_exits_0_when_every_execution_ends_as_expected_even_a_failure(tmp_path, capsys):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"requests": [{"event": HOSTILE_EVENT, "expect": "FAILED"}]}))

    assert main(["local", str(scenario), "--out", str(tmp_path / "out")]) == 0
    assert "FAILED at Parse: InvalidRequest" in capsys.readouterr().err


def test_the_cli_refuses_what_it_cannot_run_with_exit_2(tmp_path, capsys):
    assert main(["local", str(tmp_path / "absent.json")]) == 2
    assert "cannot read scenario" in capsys.readouterr().err
    assert main(["local", "--astro-cli", str(tmp_path / "no-such-astro")]) == 2
    assert "not an executable file" in capsys.readouterr().err
