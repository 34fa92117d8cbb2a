"""Nothing lost, end to end: faults injected into the real state machine, and two repos deploying at once.

After every fault the repo's prefix is byte-for-byte what it was, the deployment's lock is free, and a
notification says what happened and what was rolled back.
"""

import json
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
    StateTaskServiceDynamoDB,
)

from burst_kit import scenario
from local_mode.astro_standin import read_invocations
from local_mode.project import EXAMPLES_DIR
from local_mode.executions import watch_execution
from local_mode.scenario import Scenario, run_scenario
from local_mode.world import LocalWorld
from testkit import PER_REPO_BUNDLES, deploy_example, fake_astro, lock_items, start_behind_a_held_deploy

from functions.acquire_lock import taking

REPO = "marketing_etl"
PREFIX = f"dags/analytics/production/{REPO}/"
BEFORE = {"campaign_performance.py": b"from airflow import DAG\nDAG('campaign_performance')\n",
          "include/helpers.py": b"VERSION = 'before'\n", "sql/old_report.sql": b"select 'before'"}


def prefix_contents(world: LocalWorld, prefix: str = PREFIX) -> dict[str, tuple[bytes, dict]]:
    s3 = world.client("s3")
    contents = {}
    for key in world.dag_keys(prefix):
        response = s3.get_object(Bucket=world.dag_bucket, Key=key)
        contents[key] = (response["Body"].read(), response["Metadata"])
    return contents


def deployed_before(world: LocalWorld) -> dict[str, tuple[bytes, dict]]:
    """The repo as an earlier deploy left it, plus a neighbour repo of the same deployment."""
    s3 = world.client("s3")
    for path, body in BEFORE.items():
        s3.put_object(Bucket=world.dag_bucket, Key=PREFIX + path, Body=body, Metadata={"commit": "before"})
    s3.put_object(Bucket=world.dag_bucket, Key="dags/analytics/production/finance_reports/monthly_close.py",
                  Body=b"from airflow import DAG\nDAG('monthly_close')\n")
    return prefix_contents(world, "dags/")



def assert_nothing_lost(world: LocalWorld, before: dict, outcome_notifications) -> str:
    assert prefix_contents(world, "dags/") == before
    assert lock_items(world) == []
    [notification] = outcome_notifications
    assert "holds exactly what it held before this execution" in notification.message
    return notification.message


def test_s3_failing_in_the_middle_of_upload_is_rolled_back(tmp_path):
    with LocalWorld(tmp_path / "out") as world:
        before = deployed_before(world)
        copies = {"count": 0}

        def fail_after_three_source_copies(params, **_):
            if params.get("CopySource", {}).get("Bucket") == world.artifacts_bucket:
                copies["count"] += 1
                if copies["count"] > 3:
                    raise ClientError({"Error": {"Code": "InternalError", "Message": "injected fault"}}, "CopyObject")

        world.client("s3").meta.events.register("provide-client-params.s3.CopyObject", fail_after_three_source_copies)

        result = deploy_example(world)

        assert result.status == "FAILED" and result.failed_state == "Upload" and result.error == "UploadFailed"
        assert "Rollback" in result.states and "Deploy" not in result.states
        message = assert_nothing_lost(world, before, result.notifications)
        assert "InternalError" in message
        assert world.astro_bundles() == {}


def test_a_failing_cli_is_rolled_back(tmp_path):
    cli = fake_astro(tmp_path, 'print("Error: API Token is expired", file=sys.stderr); sys.exit(1)')
    with LocalWorld(tmp_path / "out", astro_cli=cli) as world:
        before = deployed_before(world)

        result = deploy_example(world)

        assert (result.failed_state, result.error) == ("Deploy", "AstroDeployFailed")
        assert "API Token is expired" in assert_nothing_lost(world, before, result.notifications)


def test_a_cli_hanging_past_its_timeout_is_killed_and_rolled_back(tmp_path):
    cli = fake_astro(tmp_path, 'print("Deploying...", flush=True); os.execvp("sleep", ["sleep", "300"])')
    # The deploy function's timeout leaves the CLI DEADLINE_MARGIN (30 s) less: 4 s here.
    with LocalWorld(tmp_path / "out", astro_cli=cli, context_overrides={"deployTimeoutSeconds": 34}) as world:
        before = deployed_before(world)

        result = deploy_example(world)

        assert (result.failed_state, result.error) == ("Deploy", "AstroDeployFailed")
        assert "killed" in (result.cause or "")
        assert_nothing_lost(world, before, result.notifications)


def test_an_acquire_lock_crashing_after_taking_the_lock_leaves_it_free(tmp_path, monkeypatch):
    take_lock = taking.acquire

    def crash_after_the_put(**arguments):
        take_lock(**arguments)
        raise RuntimeError("injected crash after the lease was written")

    monkeypatch.setattr(taking, "acquire", crash_after_the_put)
    with LocalWorld(tmp_path / "out") as world:
        before = deployed_before(world)

        result = deploy_example(world)

        assert (result.failed_state, result.error) == ("AcquireLock", "RuntimeError")
        # Released by Parse's key, before the notification: no lease left for the next execution to wait out.
        assert result.states[-3:] == ["Release lock after failure", "Notify", "Failed"]
        assert lock_items(world) == []
        assert prefix_contents(world, "dags/") == before
        [notification] = result.notifications
        assert "at AcquireLock" in notification.subject and "injected crash" in notification.message
        assert "lock could not be released" not in notification.message


def failing_lock_releases(monkeypatch, failures: int) -> dict:
    """DynamoDB answers the state machine's first `failures` deleteItem calls with InternalServerError."""
    calls = {"count": 0}
    delete = StateTaskServiceDynamoDB._eval_service_task

    def fail_first_deletes(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() == "delete_item":
            calls["count"] += 1
            if calls["count"] <= failures:
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected fault"},
                                   "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "injected"}},
                                  "DeleteItem")
        return delete(self, env, resource_runtime_part, normalised_parameters, state_credentials)

    monkeypatch.setattr(StateTaskServiceDynamoDB, "_eval_service_task", fail_first_deletes)
    # The retries' intervals, not slept here.
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: None))
    return calls


@pytest.mark.parametrize("failures", [2, 100])
def test_a_lock_release_failing_after_a_deploy_is_retried_and_never_fails_the_deploy(tmp_path, monkeypatch,
                                                                                     failures):
    calls = failing_lock_releases(monkeypatch, failures)
    # A ship of a per-repo bundle keeps the lock to the end, for ReleaseLock (a ship of the main bundle hands it
    # over to its ship slot in Deploy).
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        [outcome] = run_scenario(world, scenario(tmp_path / "dags", [("team_a", "aaa1")]))
        result = outcome.result

        assert result.status == "SUCCEEDED" and result.notifications == []
        output = json.loads(world.client("stepfunctions").describe_execution(executionArn=result.arn)["output"])
        if failures == 2:
            # Freed on the third attempt.
            assert calls["count"] == 3 and lock_items(world) == []
            assert "Lock release failed" not in result.states and "lock_release" not in output
        else:
            # Past the retries (1 + 6 attempts) the deploy stands; the failure shows in the console and the state.
            assert calls["count"] == 7
            assert result.states[-2:] == ["Lock release failed", "Deployed"]
            assert output["lock_release"]["Error"] == "DynamoDB.InternalServerError"
            assert [item["holder"]["S"] for item in lock_items(world)] == [result.name]


# Stopped and timed-out executions: tests/e2e/test_recovery.py.


def run_behind_a_held_deploy(world: LocalWorld, scenario: Scenario, asleep_in: str | list[str | None]) -> list:
    """Start the requests in order, the first one's deploy held until every other sleeps in `asleep_in` (or has
    ended: None); return how each ended."""
    with world.hold_deploys():
        arns = start_behind_a_held_deploy(world, scenario, asleep_in)
    return [watch_execution(world, arn) for arn in arns]


def test_two_repos_deploying_to_one_deployment_at_once_both_land(tmp_path):
    # The first ship is held until the second execution has changed its repo and deferred its ship to the next: they
    # overlap whatever the machine's load.
    with LocalWorld(tmp_path / "out") as world:
        requests = Scenario.from_document(
            {"requests": [{"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
                           "dags_dir": repo} for repo in ("marketing_etl", "finance_reports")]},
            EXAMPLES_DIR,
        )
        results = run_behind_a_held_deploy(world, requests, "DeferShip")

        assert [result.status for result in results] == ["SUCCEEDED", "SUCCEEDED"]
        deploys = sorted(read_invocations(world.astro_state_dir), key=lambda deploy: deploy["start"])
        assert len(deploys) == 2 and deploys[0]["end"] <= deploys[1]["start"], f"deploys overlapped: {deploys}"
        bundle = world.astro_bundles()["local-production"]
        for repo in ("marketing_etl", "finance_reports"):
            expected = {f"{repo}/{path.relative_to(EXAMPLES_DIR / repo)}" for path in (EXAMPLES_DIR / repo).rglob("*")
                        if path.is_file() and "__pycache__" not in path.parts}
            assert expected <= set(bundle)
        assert lock_items(world) == []
        assert world.notifications() == []


def test_a_dag_id_another_repo_shipped_while_waiting_for_the_lock_is_refused_under_it(tmp_path):
    # team_a's ship is held; team_a pushed again, now defining shared_report, passes Parse (no live file defines it)
    # and waits for that ship, which carries its repo. team_b, defining shared_report too, passes Parse, changes its
    # repo and defers its ship. team_a, taking the lock second, must find team_b's DAG in the bucket and stop.
    for folder, dag_id in (("team_a_before", "report_a"), ("team_a", "shared_report"), ("team_b", "shared_report")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "report.py").write_text(f"from airflow import DAG\nDAG('{dag_id}', schedule=None)\n")
    with LocalWorld(tmp_path / "out") as world:
        requests = Scenario.from_document(
            {"requests": [{"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
                           "dags_dir": folder}
                          for repo, folder in (("team_a", "team_a_before"), ("team_a", "team_a"), ("team_b", "team_b"))]},
            tmp_path,
        )
        results = run_behind_a_held_deploy(world, requests, ["WaitForLock", "DeferShip"])

        assert [result.status for result in results] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
        refused = results[1]
        assert refused.failed_state == "Snapshot" and refused.error == "DagIdTaken"
        assert "dag_id 'shared_report' is already defined by repo 'team_b'" in refused.cause
        # Nothing of the refused push was shipped: team_a's earlier files are in the bucket and in Astro's last
        # bundle, and the lock is free.
        live = world.client("s3").get_object(Bucket=world.dag_bucket, Key="dags/analytics/production/team_a/report.py")
        assert "report_a" in live["Body"].read().decode()
        assert set(world.astro_bundles()["local-production"]) == {"team_a/report.py", "team_b/report.py"}
        assert lock_items(world) == []
