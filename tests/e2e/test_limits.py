"""Limits of AWS the product stays within, on the real state machine (local mode, with Step Functions' payload
limits modelled: local_mode/payload_limits.py).

- Payloads: the largest request Parse can take, every entry refused, still ends FAILED with its notification; every
  state's output stays far below 256 KiB and the execution's cause below 32,768 characters. A request that Step
  Functions starts but that Parse's input cannot hold (its envelope adds the execution's name) fails with the
  terminal States.DataLimitExceeded, which no Catch catches: the recovery notifies it, once.
- Astro targets: 300 deployments configured (past what a 4 KB environment variable held), the last one deploys.
"""

import json
import time

import pytest
from botocore.exceptions import ClientError

from functions.shared.errors import PROBLEMS_SHOWN
from functions.shared.plan_store import load_parse_report
from local_mode.executions import execution_history, watch_execution
from local_mode.payload_limits import CAUSE_LIMIT_CHARACTERS, PAYLOAD_LIMIT_BYTES
from local_mode.world import LocalWorld
from testkit import deploy_example, recovery_arn, wait_until_ended

NAME = "repo-a-0123456789ab-largest-refused-request"
# Parse's input wraps the request: {"request": <request>, "execution": "<name>"}.
PARSE_ENVELOPE_BYTES = len(json.dumps({"request": None, "execution": NAME}, separators=(",", ":"))) - len("null")
# Every state's output: a few KiB (the plan summary, a bounded failure), never near the limit.
STATE_OUTPUT_BOUND = 16 * 1024


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def largest_refused_request(size: int) -> dict:
    """A request of exactly `size` bytes (compact JSON) whose every entry names a bucket that is not allowed."""
    def entry(number: int, key_length: int) -> dict:
        key = f"dags/{number:05}/" + "k" * (key_length - 15) + ".py"
        return {"dag_id": f"dag_{number}", "dag_file": f"s3://not-an-allowed-bucket/{key}"}

    request = {"astroWorkspace": "analytics", "astroDeployment": "production", "repo": "repo-a",
               "commit": "0123456789abcdef0123456789abcdef01234567", "body": {"dags": []}}
    dags = request["body"]["dags"]
    while len(compact(request)) + len(compact(entry(len(dags), 1024))) + 1 <= size:
        dags.append(entry(len(dags), 1024))
    missing = size - len(compact(request)) - len(compact(entry(len(dags), 16))) - 1
    dags.append(entry(len(dags), 16 + missing))
    assert len(compact(request).encode()) == size
    return request


def test_the_largest_request_refused_entry_by_entry_ends_failed_with_its_notification(world):
    sfn = world.client("stepfunctions")
    # The model is on: Step Functions refuses an input over its limit outright.
    with pytest.raises(ClientError, match="ValidationException"):
        sfn.start_execution(stateMachineArn=world.state_machine_arn, name="over-the-limit",
                            input=compact({"padding": "p" * PAYLOAD_LIMIT_BYTES}))
    request = largest_refused_request(PAYLOAD_LIMIT_BYTES - PARSE_ENVELOPE_BYTES)
    entries = len(request["body"]["dags"])
    assert entries > 200

    arn = sfn.start_execution(stateMachineArn=world.state_machine_arn, name=NAME, input=compact(request))["executionArn"]
    result = watch_execution(world, arn)

    assert (result.status, result.error, result.failed_state) == ("FAILED", "InvalidRequest", "Parse")
    report_uri = f"s3://{world.dag_bucket}/plans/{NAME}.report.json"
    assert f"{entries} problems in the request (full report: {report_uri}): the first {PROBLEMS_SHOWN}: " in result.cause
    assert len(result.cause) < CAUSE_LIMIT_CHARACTERS // 2
    [notification] = result.notifications
    assert notification.subject == "astro-dag-deploy FAILED: repo-a -> analytics/production at Parse"
    assert f"Every problem found: {report_uri}" in notification.message
    assert len(load_parse_report(world.dag_bucket, NAME).problems) == entries
    outputs = [event["stateExitedEventDetails"]["output"] for event in execution_history(world, arn)
               if "stateExitedEventDetails" in event]
    assert outputs and max(len(output.encode()) for output in outputs) < STATE_OUTPUT_BOUND


def test_a_request_too_large_for_parses_input_is_recovered_and_notified_once(world):
    sfn = world.client("stepfunctions")
    request = largest_refused_request(PAYLOAD_LIMIT_BYTES)
    name = "repo-a-0123456789ab-too-large-for-parse"
    arn = sfn.start_execution(stateMachineArn=world.state_machine_arn, name=name, input=compact(request))["executionArn"]

    result = watch_execution(world, arn)
    recovery = wait_until_ended(world, recovery_arn(world, name))

    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert recovery["status"] == "SUCCEEDED"
    [notification] = [note for note in world.notifications() if f"Execution: {name}\n" in note.message]
    assert notification.subject == "astro-dag-deploy FAILED: repo-a -> analytics/production at execution FAILED"
    assert "Error: States.DataLimitExceeded" in notification.message
    assert "Nothing was changed" in notification.message
    # The sweep finds it recovered already.
    assert world.run_schedules() == [{"recoveries_started": [], "locks_freed": []}]


def test_the_sweep_recovers_terminal_failures_whose_event_was_lost_and_only_those(world):
    sfn = world.client("stepfunctions")
    with world.lose_status_events() as lost:
        too_large = sfn.start_execution(stateMachineArn=world.state_machine_arn, name="too-large",
                                        input=compact(largest_refused_request(PAYLOAD_LIMIT_BYTES)))["executionArn"]
        refused = sfn.start_execution(stateMachineArn=world.state_machine_arn, name="refused",
                                      input=compact(largest_refused_request(2048)))["executionArn"]
        results = [watch_execution(world, arn) for arn in (too_large, refused)]
        deadline = time.monotonic() + 10
        while len(lost) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [(result.status, result.error) for result in results] == [
        ("FAILED", "States.DataLimitExceeded"), ("FAILED", "InvalidRequest")]
    assert sorted(event["detail"]["name"] for event in lost) == ["refused", "too-large"]

    # The refused request ran its failure path (and was notified there): only the other one needs a recovery.
    assert world.run_schedules() == [{"recoveries_started": ["too-large"], "locks_freed": []}]
    assert wait_until_ended(world, recovery_arn(world, "too-large"))["status"] == "SUCCEEDED"
    assert sorted(note.message.split("Execution: ")[1].split("\n")[0] for note in world.notifications()) == [
        "refused", "too-large"]


def test_three_hundred_deployments_configured_the_last_one_deploys(tmp_path):
    deployments = {f"team{number:03}/prod": {"deploymentId": f"clx{number:03}astro"} for number in range(300)}
    with LocalWorld(tmp_path / "out", context_overrides={"astroDeployments": deployments}) as world:
        # Every function's environment stays small: the targets are in SSM, not in a variable.
        assert all(len(value) < 200 for value in world.environment.values())
        result = deploy_example(world, repo="marketing_etl", expect="SUCCEEDED", workspace="team299",
                                deployment="prod")
        assert result.status == "SUCCEEDED"
        assert world.astro_bundles()["clx299astro"]
        assert set(world.astro_bundles()) == {"clx299astro"}
