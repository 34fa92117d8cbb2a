"""The sweeper's reading of an ended execution: whether its failure path ran, and from its history what is still in
flight, until when, and what it did."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from functions.shared.execution_ends import ended_without_failure_path
from functions.shared.execution_state import PlanSummary
from functions.sweeper import recovery_start
from functions.sweeper.recovery_start import (
    CLOCK_MARGIN_SECONDS, INIT_PHASE_SECONDS, deploy_scheduled, in_flight_until, open_invocations, plan_summary,
)

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
UPLOAD = "arn:aws:lambda:us-east-1:123456789012:function:upload"
DEPLOY = "arn:aws:lambda:us-east-1:123456789012:function:deploy"
PLAN = PlanSummary(workspace="ws", deployment="dep", repo="r", execution="e", prefix="dags/ws/dep/r/",
                   plan="s3://b/plans/e.json", files=1, bytes=1, dag_count=1, dag_ids=["d"], lock_key="ws/dep")


def scheduled(function_arn: str, seconds: int) -> dict:
    return {"type": "LambdaFunctionScheduled", "timestamp": START + timedelta(seconds=seconds),
            "lambdaFunctionScheduledEventDetails": {"resource": function_arn}}


def event(kind: str, seconds: int, **details) -> dict:
    return {"type": kind, "timestamp": START + timedelta(seconds=seconds), **details}


@pytest.mark.parametrize(("status", "error", "skipped"), [
    ("ABORTED", None, True),
    ("TIMED_OUT", None, True),
    # Terminal errors: no Catch catches them, States.ALL included.
    ("FAILED", "States.DataLimitExceeded", True),
    ("FAILED", "States.Runtime", True),
    # The machine's Fail state, after its failure path: the error it carries, States.* ones caught earlier included.
    ("FAILED", "InvalidRequest", False),
    ("FAILED", "States.Timeout", False),
    ("FAILED", "Sandbox.Timedout", False),
    ("SUCCEEDED", None, False),
])
def test_which_endings_skip_the_failure_path(status, error, skipped):
    assert ended_without_failure_path(status, error) is skipped


@pytest.fixture
def timeouts(monkeypatch):
    configured = {UPLOAD: 600, DEPLOY: 900}
    monkeypatch.setattr(recovery_start, "_function_timeout_seconds", configured.__getitem__)
    return configured


def test_an_invocation_the_history_never_saw_end_is_in_flight_until_its_function_timeout(timeouts):
    events = [scheduled(UPLOAD, 10), event("LambdaFunctionStarted", 10), event("ExecutionAborted", 20)]

    assert open_invocations(events) == [recovery_start.Invocation(UPLOAD, START + timedelta(seconds=10))]
    assert in_flight_until(events, START + timedelta(seconds=20)) == START + timedelta(
        seconds=10 + 600 + INIT_PHASE_SECONDS + CLOCK_MARGIN_SECONDS)


def test_a_task_timeout_does_not_end_the_invocation_a_result_does(timeouts):
    events = [scheduled(UPLOAD, 0), event("LambdaFunctionTimedOut", 630), scheduled(UPLOAD, 632),
              event("LambdaFunctionSucceeded", 640)]
    # The retried attempt ended; the first one may still run (Lambda had not necessarily stopped it).
    assert [invocation.scheduled for invocation in open_invocations(events)] == [START]


def test_with_nothing_in_flight_the_recovery_need_not_wait(timeouts):
    events = [scheduled(UPLOAD, 0), event("LambdaFunctionSucceeded", 5), event("ExecutionAborted", 9)]
    assert in_flight_until(events, START + timedelta(seconds=9)) == START + timedelta(seconds=9)


def test_deploy_may_have_shipped_once_its_function_was_invoked():
    assert deploy_scheduled([scheduled(UPLOAD, 0), scheduled(DEPLOY, 9)], DEPLOY)
    assert not deploy_scheduled([scheduled(UPLOAD, 0)], DEPLOY)


def test_the_plan_summary_is_read_from_any_state_output_after_parse():
    exited = event("TaskStateExited", 3, stateExitedEventDetails={
        "name": "Upload", "output": json.dumps({**PLAN.to_json(), "upload": {"copied": 1}})})
    request = event("TaskStateEntered", 0, stateEnteredEventDetails={"name": "Parse", "input": "{}"})
    assert plan_summary([request, exited]) == PLAN
    assert plan_summary([request]) is None
