"""Start the recovery of an ended execution: the recovery state machine, named after it, with what it needs.

Everything is read from Step Functions' own record of the execution (DescribeExecution and its history), never from
the status-change event, whose `input` is left out when large. The recovery waits, in a Wait state, until every
Lambda invocation the execution started has provably ended: Lambda cannot cancel an invocation, and one still
running after a stop (or the execution's timeout) keeps copying files or shipping a bundle up to its function's
timeout. An invocation has ended when the history records its end, or at the latest when its function's timeout
(plus Lambda's Init phase) has passed since it was scheduled.
"""

import json
import math
import os
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.documents import InvalidDocument
from functions.shared.execution_state import Failure, PlanSummary, RequestedNames
from functions.shared.records import FrozenRecord

# Lambda's Init phase runs before the function's timeout starts counting, for up to 10 s; a little more for clocks.
INIT_PHASE_SECONDS = 10
CLOCK_MARGIN_SECONDS = 2
# The longest a Lambda function may run, for a function whose configuration cannot be read.
LAMBDA_MAX_TIMEOUT_SECONDS = 900
# History events that end an invocation (a task's own timeout does not: the invocation runs on).
INVOCATION_ENDS = {"LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionStartFailed"}
NAME_LIMIT = 200
ALREADY_EXISTS = "ExecutionAlreadyExists"


class RecoverySettings(FrozenRecord):
    pipeline_arn: str  # the deploy state machine
    recovery_arn: str  # the recovery state machine
    deploy_function_arn: str

    @classmethod
    def from_environment(cls) -> "RecoverySettings":
        """As the stack sets the Sweeper's variables (cdk/recovery.py)."""
        return cls(pipeline_arn=os.environ["PIPELINE_STATE_MACHINE_ARN"],
                   recovery_arn=os.environ["RECOVERY_STATE_MACHINE_ARN"],
                   deploy_function_arn=os.environ["DEPLOY_FUNCTION_ARN"])

    def execution_arn(self, state_machine_arn: str, name: str) -> str:
        return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class Invocation(FrozenRecord):
    function_arn: str
    scheduled: datetime


def _history(execution_arn: str) -> list[dict]:
    events = []
    for page in client("stepfunctions").get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events += page["events"]
    return events


def open_invocations(events: list[dict]) -> list[Invocation]:
    """The Lambda invocations whose end the history does not record (the execution runs one task at a time: an
    end closes the latest invocation still open)."""
    invocations: list[Invocation] = []
    for event in events:
        if event["type"] == "LambdaFunctionScheduled":
            invocations.append(Invocation(event["lambdaFunctionScheduledEventDetails"]["resource"], event["timestamp"]))
        elif event["type"] in INVOCATION_ENDS and invocations:
            invocations.pop()
    return invocations


def _function_timeout_seconds(function_arn: str) -> int:
    try:
        return client("lambda").get_function_configuration(FunctionName=function_arn)["Timeout"]
    except ClientError:
        return LAMBDA_MAX_TIMEOUT_SECONDS


def in_flight_until(events: list[dict], stopped: datetime) -> datetime:
    """When every invocation the execution started has ended, at the latest."""
    deadlines = [
        invocation.scheduled
        + timedelta(seconds=_function_timeout_seconds(invocation.function_arn) + INIT_PHASE_SECONDS
                    + CLOCK_MARGIN_SECONDS)
        for invocation in open_invocations(events)
    ]
    return max([stopped, *deadlines])


def plan_summary(events: list[dict]) -> PlanSummary | None:
    """Parse's plan summary: every state's output from Parse on carries it."""
    for event in reversed(events):
        output = event.get("stateExitedEventDetails", {}).get("output")
        if output:
            try:
                return PlanSummary.from_json(json.loads(output))
            except (ValueError, InvalidDocument):
                continue
    return None


def deploy_scheduled(events: list[dict], deploy_function_arn: str) -> bool:
    """Whether the execution may have shipped a bundle: its Deploy function was invoked."""
    return any(
        event["type"] == "LambdaFunctionScheduled"
        and event["lambdaFunctionScheduledEventDetails"]["resource"].startswith(deploy_function_arn)
        for event in events
    )


def _requested_names(execution_input: str | None) -> dict:
    """Who the request says it was for, names only (a refused request may hold anything: short strings)."""
    try:
        names = RequestedNames.from_request(json.loads(execution_input or "null"))
    except ValueError:
        names = RequestedNames()
    return {field: value[:NAME_LIMIT] for field, value in
            (("astroWorkspace", names.workspace), ("astroDeployment", names.deployment), ("repo", names.repo),
             ("commit", names.commit)) if isinstance(value, str)}


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, rounded up to the second (a Wait state's TimestampPath)."""
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def recovery_input(execution_arn: str, settings: RecoverySettings) -> tuple[str, dict]:
    """The recovery's name (the ended execution's) and its input: the plan summary (who, which lock; absent when
    Parse never finished), the names requested, the failure, and when the invocations in flight have ended."""
    description = client("stepfunctions").describe_execution(executionArn=execution_arn)
    events = _history(execution_arn)
    status = description["status"]
    failure = Failure(state=f"execution {status}", error=description.get("error") or f"States.{status}",
                      cause=description.get("cause") or f"the execution was {status.lower().replace('_', ' ')}")
    plan = plan_summary(events)
    document = {
        **(plan.to_json() if plan else {}),
        "request": _requested_names(description.get("input")),
        "failure": failure.to_json(),
        "recovery": {
            "execution": description["name"],
            "execution_arn": execution_arn,
            "status": status,
            "in_flight_until": _timestamp(in_flight_until(events, description.get("stopDate")
                                                          or description["startDate"])),
            "deploy_may_have_shipped": deploy_scheduled(events, settings.deploy_function_arn),
        },
    }
    return description["name"], document


def start_recovery(execution_arn: str, settings: RecoverySettings) -> bool:
    """Start the recovery of an ended execution unless one was started before; return whether this call did."""
    name, document = recovery_input(execution_arn, settings)
    try:
        client("stepfunctions").start_execution(stateMachineArn=settings.recovery_arn, name=name,
                                                input=json.dumps(document))
    except ClientError as error:
        # Named after the execution: a second event, or the sweeper, finds it started already.
        if error.response["Error"]["Code"] == ALREADY_EXISTS:
            return False
        raise
    return True
