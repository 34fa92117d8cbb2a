"""The local mode's model of Step Functions' payload limits (local_mode/payload_limits.py).

AWS: every state's input and output, a task's input after Parameters, a task's result and the execution's input
are limited to 256 KiB (UTF-8); past it the state fails with States.DataLimitExceeded, which no Retry retries and no
Catch handles (States.ALL does not match it): the execution fails at once. StartExecution refuses a larger input.
A failure's cause holds at most 32,768 characters.
"""

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from testkit import install_probe_module, placeholder_zip

from local_mode.lambda_seam import in_process_lambdas
from local_mode.payload_limits import CAUSE_LIMIT_CHARACTERS, PAYLOAD_LIMIT_BYTES, payload_limits

PROBE_MODULE = '''
calls = []


def handler(event, context):
    calls.append(event)
    return {"data": event.get("character", "x") * event.get("answer_bytes", 0)}
'''
OVER = PAYLOAD_LIMIT_BYTES + 1
CAUGHT = "Caught"


@pytest.fixture
def aws_with_probe(tmp_path, monkeypatch):
    install_probe_module(monkeypatch, tmp_path, "payload_probe", PROBE_MODULE)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), in_process_lambdas():
        role = boto3.client("iam").create_role(RoleName="probe", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function_arn = boto3.client("lambda").create_function(
            FunctionName="probe", Role=role, Runtime="python3.12", Handler="payload_probe.handler", Timeout=30,
            Code={"ZipFile": placeholder_zip()},
        )["FunctionArn"]
        import payload_probe

        payload_probe.calls.clear()
        yield role, function_arn, payload_probe.calls


def _task(function_arn: str, **fields) -> dict:
    return {
        "Type": "Task",
        "Resource": function_arn,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": CAUGHT}],
        "End": True,
        **fields,
    }


def _run(role: str, states: dict, execution_input: object) -> tuple[dict, list[str]]:
    sfn = boto3.client("stepfunctions")
    definition = {"StartAt": next(iter(states)), "States": {**states, CAUGHT: {"Type": "Succeed"}}}
    machine = sfn.create_state_machine(name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=role)
    execution = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=f"e{time.monotonic_ns()}", input=json.dumps(execution_input)
    )["executionArn"]
    deadline = time.monotonic() + 30
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    entered = [event[key]["name"] for event in events for key in event if key == "stateEnteredEventDetails"]
    return described, entered


def _failed_uncaught(described: dict, entered: list[str]) -> None:
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    assert CAUGHT not in entered


def test_a_task_result_over_the_limit_fails_the_execution_though_a_catch_matches_every_error(aws_with_probe):
    role, function_arn, _ = aws_with_probe
    with payload_limits():
        described, entered = _run(role, {"Answer": _task(function_arn)}, {"answer_bytes": OVER})
    _failed_uncaught(described, entered)


def test_without_the_model_moto_lets_a_catch_handle_it_which_aws_does_not(aws_with_probe):
    role, function_arn, _ = aws_with_probe
    described, entered = _run(role, {"Answer": _task(function_arn)}, {"answer_bytes": OVER})
    assert described["status"] == "SUCCEEDED" and CAUGHT in entered


def test_a_task_input_over_the_limit_after_parameters_fails_the_execution(aws_with_probe):
    role, function_arn, calls = aws_with_probe
    # The execution's input is under the limit; Parameters carry it twice.
    half = {"padding": "y" * (PAYLOAD_LIMIT_BYTES // 2)}
    task = _task(function_arn, Parameters={"first.$": "$", "second.$": "$"})
    with payload_limits():
        described, entered = _run(role, {"Twice": task}, half)
    _failed_uncaught(described, entered)
    assert calls == [], "the function must not be invoked with an input over the limit"


def test_a_state_output_over_the_limit_fails_the_execution(aws_with_probe):
    role, function_arn, _ = aws_with_probe
    # Input and result each under the limit; the result added to the input (ResultPath) is over it.
    execution_input = {"answer_bytes": PAYLOAD_LIMIT_BYTES // 2 + 10, "padding": "z" * (PAYLOAD_LIMIT_BYTES // 2)}
    with payload_limits():
        described, entered = _run(role, {"Grow": _task(function_arn, ResultPath="$.result")}, execution_input)
    _failed_uncaught(described, entered)


def test_data_limit_exceeded_is_never_retried(aws_with_probe):
    role, function_arn, calls = aws_with_probe
    task = _task(function_arn, Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3, "IntervalSeconds": 1}])
    with payload_limits():
        described, entered = _run(role, {"Answer": task}, {"answer_bytes": OVER})
    _failed_uncaught(described, entered)
    assert len(calls) == 1


def test_a_fail_state_cause_over_32768_characters_loses_the_states_own_error(aws_with_probe):
    role, _, _ = aws_with_probe
    states = {"Stop": {"Type": "Fail", "Error": "Mine", "CausePath": "$.cause"}}
    with payload_limits():
        fitting, _ = _run(role, states, {"cause": "c" * CAUSE_LIMIT_CHARACTERS})
        too_long, _ = _run(role, states, {"cause": "c" * (CAUSE_LIMIT_CHARACTERS + 1)})
    assert (fitting["status"], fitting["error"], len(fitting["cause"])) == ("FAILED", "Mine", CAUSE_LIMIT_CHARACTERS)
    assert (too_long["status"], too_long["error"]) == ("FAILED", "States.DataLimitExceeded")


def test_start_execution_refuses_an_input_over_the_limit(aws_with_probe):
    role, _, _ = aws_with_probe
    with payload_limits(), pytest.raises(ClientError, match="ValidationException"):
        _run(role, {"Done": {"Type": "Succeed"}}, {"padding": "p" * PAYLOAD_LIMIT_BYTES})


def test_the_limit_counts_utf8_bytes_not_characters_nor_escapes(aws_with_probe):
    role, function_arn, _ = aws_with_probe
    # Each "é" is two bytes in UTF-8 (six as moto escapes it): over the limit in bytes, not in characters...
    with payload_limits():
        described, entered = _run(role, {"Wide": _task(function_arn)}, {"character": "é", "answer_bytes": OVER // 2 + 8})
    _failed_uncaught(described, entered)
    # ... and under it in bytes, though over it as escaped ASCII.
    with payload_limits():
        described, entered = _run(role, {"Wide": _task(function_arn)}, {"character": "é", "answer_bytes": OVER // 2 - 200})
    assert described["status"] == "SUCCEEDED" and CAUGHT not in entered
