"""Status: where a deploy execution is, or how it ended, told from its description and its recent history."""

import dataclasses
import json
from datetime import datetime

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.documents import Document
from functions.shared.execution_names import execution_name_problem
from functions.shared.execution_state import DryRunReport, ExecutionState, Failure
from functions.shared.notification import console_url, readable_cause

# One page of the newest events: a deploy's whole history fits in it, lock waits included.
HISTORY_EVENTS = 1000
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


class InvalidExecutionName(ValueError):
    """The name cannot be an execution's: Step Functions would refuse it."""


class ExecutionNotFound(LookupError):
    """No execution of this state machine has the name."""


class ExecutionStatus(Document):
    """The API's answer; fields are camelCase on the wire, as Step Functions names them."""

    name: str
    status: str
    state: str | None  # where it is (RUNNING), ended (SUCCEEDED, ABORTED, TIMED_OUT) or failed (FAILED)
    error: str | None
    cause: str | None
    start_date: str
    stop_date: str | None
    bundle: str | None  # the Astro Dag bundle shipped, on success
    version: str | None  # its version, as Astro answered, on success: the one that carries the execution's commit
    console_url: str
    states: list[str]  # the states entered, oldest first
    # On success: the request against what was live, and whether the ship was skipped as unchanged.
    live: dict | None = None
    unchanged: bool = False
    dry_run: dict | None = None  # a dry run's report (DryRunReport), once it is made
    # In a burst: the execution whose ship carried this one's deferred change (functions/shared/deferred_ships.py).
    shipped_by: str | None = None

    def to_api(self) -> dict:
        return camel_keys(dataclasses.asdict(self))


def camel_keys(value: object) -> object:
    """The API's JSON: every key camelCase, as Step Functions names its fields."""
    if isinstance(value, dict):
        return {_camel(name): camel_keys(item) for name, item in value.items()}
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:R:A:stateMachine:M -> arn:aws:states:R:A:execution:M:<name>."""
    head, kind, machine = state_machine_arn.rsplit(":", 2)
    if kind != "stateMachine":
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{head}:execution:{machine}:{name}"


def describe_deployment(state_machine_arn: str, name: str) -> ExecutionStatus:
    problem = execution_name_problem(name)
    if problem:
        raise InvalidExecutionName(f"{name[:100]!r} is not an execution name: {problem}")
    arn = execution_arn(state_machine_arn, name)
    sfn = client("stepfunctions")
    try:
        description = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=HISTORY_EVENTS, includeExecutionData=True
        )["events"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ExecutionDoesNotExist":
            raise ExecutionNotFound(f"no execution is named {name}") from None
        raise
    # Sorted by id: moto ignores reverseOrder (oldest first); Step Functions honours it (newest page first).
    oldest_first = sorted(events, key=lambda event: event["id"])
    entered = [event for event in oldest_first if event["type"].endswith("StateEntered")]
    states = [event["stateEnteredEventDetails"]["name"] for event in entered]
    status = description["status"]
    ended = _state(description.get("output")) if status == "SUCCEEDED" else ExecutionState()
    # Its own ship (or, back for the lock, the one found to have carried it), or, in a burst, the later ship that
    # carried its change and told it so.
    own, told = ended.deploy, ended.carried if ended.carried and ended.carried.shipped else None
    deploy = own or told
    failure = _recorded_failure(entered)
    report = ended.dry_run_report or _dry_run_report(entered)
    state = states[-1] if states else None
    if status in FAILED_STATUSES and failure:
        state = failure.state
    return ExecutionStatus(
        name=description["name"],
        status=status,
        state=state,
        error=description.get("error") or (failure.error if failure else None),
        cause=_cause(description.get("cause") or (failure.cause if failure else None)),
        start_date=_iso(description["startDate"]),
        stop_date=_iso(description.get("stopDate")),
        bundle=deploy.bundle if deploy else None,
        version=deploy.version if deploy else None,
        console_url=console_url(arn),
        states=states,
        live=ended.live.to_json() if ended.live else None,
        unchanged=bool(ended.live and ended.live.unchanged and not deploy),
        dry_run=report.to_json() if report else None,
        shipped_by=own.carried_by if own else (told.shipped_by if told else None),
    )


def _dry_run_report(entered: list[dict]) -> DryRunReport | None:
    """A failed dry run's report, from the state that ends it (a FAILED execution has no output)."""
    for event in reversed(entered):
        report = _state(event["stateEnteredEventDetails"].get("input")).dry_run_report
        if report:
            return report
    return None


def _recorded_failure(entered: list[dict]) -> Failure | None:
    """The failure the failure path recorded (state, error, cause), from the newest state that has it.

    Notify and Failed are entered with it; the `<Task> failed` states still hold Step Functions' raw catch result.
    """
    for event in reversed(entered):
        failure = _state(event["stateEnteredEventDetails"].get("input")).failure
        if failure:
            return failure
    return None


def _state(document: str | None) -> ExecutionState:
    try:
        return ExecutionState.from_json(json.loads(document or "null"))
    except ValueError:
        return ExecutionState()


def _cause(cause: str | None) -> str | None:
    # A Lambda error's cause is its JSON error document; a person needs its message, not the stack trace.
    return readable_cause(cause) if cause else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
