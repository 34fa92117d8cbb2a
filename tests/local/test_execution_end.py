"""The local mode ends executions as AWS does: at once, while the Lambda invocation in flight runs to its end; and
EventBridge's status event leaves a large input out."""

import json
import time

from local_mode.astro_standin import read_invocations
from local_mode.events import EVENT_DATA_LIMIT_BYTES, status_change_event
from local_mode.world import LocalWorld

from local_mode.project import EXAMPLES_DIR
from local_mode.scenario import Scenario, upload_dags_dir

DESCRIPTION = {"executionArn": "arn:aws:states:us-east-1:1:execution:m:e", "stateMachineArn": "arn:aws:states:::m",
               "name": "e", "status": "ABORTED", "startDate": None, "stopDate": None}


def test_the_status_event_leaves_a_large_input_out_and_says_so():
    # AWS: Step Functions leaves `input` and `output` out of its status-change event when they would not fit an
    # EventBridge event (`inputDetails.included: false`); DescribeExecution still has them.
    small = status_change_event({**DESCRIPTION, "input": json.dumps({"repo": "r"})}, "1", "us-east-1")
    large = status_change_event({**DESCRIPTION, "input": json.dumps({"pad": "x" * EVENT_DATA_LIMIT_BYTES})}, "1",
                                "us-east-1")

    assert small["detail"]["input"] == '{"repo": "r"}' and small["detail"]["inputDetails"] == {"included": True}
    assert large["detail"]["input"] is None and large["detail"]["inputDetails"] == {"included": False}
    assert large["detail"]["outputDetails"] == {"included": False}


def start_deploying(world: LocalWorld, name: str) -> str:
    scenario = Scenario.from_document({"requests": [{"astroWorkspace": "analytics", "astroDeployment": name,
                                                     "repo": "marketing_etl", "dags_dir": "marketing_etl"}]},
                                      EXAMPLES_DIR)
    execution_input = upload_dags_dir(world.client("s3"), world.artifacts_bucket, scenario.requests[0], name)
    arn = world.start_execution(execution_input, name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        events = world.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
        entered = [index for index, event in enumerate(events)
                   if event.get("stateEnteredEventDetails", {}).get("name") == "Deploy"]
        # The Deploy function is running (not only its state entered).
        if entered and any(event["type"] == "LambdaFunctionStarted" for event in events[entered[0]:]):
            return arn
        time.sleep(0.05)
    raise AssertionError("Deploy never started")


def test_a_stop_or_a_timeout_ends_the_execution_at_once_while_its_invocation_runs_to_its_end(tmp_path):
    # AWS: StopExecution, or the execution's timeout, ends it at that moment (ABORTED, TIMED_OUT) and its status
    # event goes out; a Lambda invocation in flight is not cancelled (Lambda cannot) and runs to its end.
    with LocalWorld(tmp_path / "out") as world:
        sfn = world.client("stepfunctions")
        with world.hold_deploys():
            stopped, timed_out = start_deploying(world, "stopped"), start_deploying(world, "timed-out")
            sfn.stop_execution(executionArn=stopped, cause="operator")
            world.time_out_execution(timed_out)

            assert sfn.describe_execution(executionArn=stopped)["status"] == "ABORTED"
            assert sfn.describe_execution(executionArn=timed_out)["status"] == "TIMED_OUT"
            assert [delivery.event["detail"]["status"] for arn in (stopped, timed_out)
                    for delivery in world.event_deliveries(arn)] == ["ABORTED", "TIMED_OUT"]
            assert read_invocations(world.astro_state_dir) == []
            ended_at = time.time()
        deadline = time.monotonic() + 60
        while len(read_invocations(world.astro_state_dir)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)

        # Both deploys, held in flight past the end of their executions, landed afterwards.
        deploys = read_invocations(world.astro_state_dir)
        assert [deploy["outcome"] for deploy in deploys] == ["deployed", "deployed"]
        assert all(deploy["end"] > ended_at for deploy in deploys)
        assert sfn.describe_execution(executionArn=stopped)["status"] == "ABORTED"
        assert sfn.describe_execution(executionArn=timed_out)["status"] == "TIMED_OUT"
