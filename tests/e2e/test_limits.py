"""Limits of AWS the product stays within, on the real state machine (local mode, with Step Functions' payload
limits modelled: local_mode/payload_limits.py).

- Payloads: the largest request Step Functions starts, every entry refused by Parse, still ends FAILED with its
  notification; every state's output stays far below 256 KiB and the execution's cause below 32,768 characters.
- Astro targets: 300 deployments configured (past what a 4 KB environment variable held), the last one deploys.
"""

import json

import pytest
from botocore.exceptions import ClientError

from functions.shared.errors import PROBLEMS_SHOWN
from functions.shared.plan_store import load_parse_report
from local_mode.executions import execution_history, watch_execution
from local_mode.payload_limits import CAUSE_LIMIT_CHARACTERS, PAYLOAD_LIMIT_BYTES
from local_mode.world import LocalWorld
from testkit import deploy_example

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
