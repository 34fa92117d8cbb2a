"""Following an execution through its history, state by state, as it happens."""

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TextIO

from local_mode.world import LocalWorld, Notification

POLL_SECONDS = 0.05
# A watcher whose execution has not moved polls less and less often, up to this: executions that wait (for the
# lock, for a ship) would otherwise take the CPU from the ones that work, reading their whole history each time.
IDLE_POLL_SECONDS = 1.0
_ATTEMPT_EVENTS = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
_SUCCESS_EVENTS = {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"}
# An execution ended from outside ends the state it was in without that state's own failure event.
_INTERRUPTIONS = {"ExecutionAborted": "ABORTED", "ExecutionTimedOut": "TIMED_OUT"}


@dataclass
class StateVisit:
    """One time a state was entered: when, how often its task was tried, and the last failure seen in it."""

    name: str
    state_type: str  # Task, Pass, Fail, Succeed, ... (from the history's event type)
    entered: datetime
    exited: datetime | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass
class ExecutionResult:
    name: str
    arn: str
    status: str
    error: str | None
    cause: str | None
    visits: list[StateVisit]
    started: datetime
    stopped: datetime | None
    notifications: list[Notification] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [visit.name for visit in self.visits]

    @property
    def failed_state(self) -> str | None:
        """The state where things went wrong: the first whose task failed with the execution's error, else the
        first whose task failed (a failure the definition resumes from, like a lock found free while starting to
        wait for it, is not the execution's), else the one left unfinished."""
        if self.status == "SUCCEEDED":
            return None
        failed = [visit for visit in self.visits if visit.failed]
        culprit = next((visit for visit in failed if visit.error == self.error), failed[0] if failed else None)
        if culprit:
            return culprit.name
        candidates = [visit for visit in self.visits if visit.exited is None] or self.visits
        return candidates[-1].name if candidates else None

    @property
    def seconds(self) -> float | None:
        return (self.stopped - self.started).total_seconds() if self.stopped else None


class ProgressListener(Protocol):
    def state_entered(self, execution: str, visit: StateVisit) -> None: ...

    def state_retried(self, execution: str, visit: StateVisit) -> None: ...

    def state_exited(self, execution: str, visit: StateVisit) -> None: ...

    def execution_finished(self, result: "ExecutionResult") -> None: ...


def _event_details(event: dict) -> dict:
    return next((value for key, value in event.items() if key.endswith("EventDetails")), {})


class HistoryReader:
    """Turns history events into state visits, telling a listener as each state is entered and left."""

    def __init__(self, execution: str, listener: ProgressListener | None):
        self.execution = execution
        self.listener = listener
        self.visits: list[StateVisit] = []
        self.seen = 0

    def read(self, events: list[dict]) -> bool:
        """Apply the events not seen yet; return whether there were any."""
        for event in events[self.seen:]:
            self._apply(event)
        moved, self.seen = len(events) > self.seen, len(events)
        return moved

    def _apply(self, event: dict) -> None:
        kind, details, at = event["type"], _event_details(event), event["timestamp"]
        current = self.visits[-1] if self.visits else None
        if kind.endswith("StateEntered"):
            visit = StateVisit(name=details["name"], state_type=kind.removesuffix("StateEntered"), entered=at)
            self.visits.append(visit)
            self._tell("state_entered", visit)
        elif current is None or current.exited is not None:
            return
        elif kind in _ATTEMPT_EVENTS:
            current.attempts += 1
            if current.attempts > 1:
                self._tell("state_retried", current)
        elif kind in _SUCCESS_EVENTS:
            current.error = current.cause = None
        elif (kind.endswith("Failed") or kind.endswith("TimedOut")) and not kind.startswith("Execution"):
            current.error = details.get("error") or kind
            current.cause = details.get("cause")
        elif kind.endswith("StateExited") or kind.startswith("Execution"):
            # A terminal execution event also ends the state it happened in (a Fail state has no exit event).
            current.exited = at
            current.error = current.error or _INTERRUPTIONS.get(kind)
            self._tell("state_exited", current)

    def _tell(self, method: str, visit: StateVisit) -> None:
        if self.listener is not None:
            getattr(self.listener, method)(self.execution, visit)


def mentions(text: str, execution_name: str) -> bool:
    """Whether the text names this execution (not merely one whose name starts the same, like run-1 and run-10)."""
    return re.search(rf"(?<![\w-]){re.escape(execution_name)}(?![\w-])", text) is not None


def execution_history(world: LocalWorld, arn: str) -> list[dict]:
    sfn = world.client("stepfunctions")
    events: list[dict] = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return sorted(events, key=lambda event: event["id"])


def watch_execution(world: LocalWorld, arn: str, listener: ProgressListener | None = None) -> ExecutionResult:
    """Poll the execution until it ends, telling the listener about each state as it happens."""
    sfn = world.client("stepfunctions")
    name = arn.rsplit(":", 1)[-1]
    reader = HistoryReader(name, listener)
    pause = POLL_SECONDS
    while True:
        description = sfn.describe_execution(executionArn=arn)
        # Read after describing: once the status is final, this history holds every event.
        moved = reader.read(execution_history(world, arn))
        if description["status"] != "RUNNING":
            break
        pause = POLL_SECONDS if moved else min(pause * 2, IDLE_POLL_SECONDS)
        time.sleep(pause)
    result = ExecutionResult(
        name=name, arn=arn, status=description["status"], error=description.get("error"),
        cause=description.get("cause"), visits=reader.visits, started=description["startDate"],
        stopped=description.get("stopDate"),
        notifications=[note for note in world.notifications() if mentions(note.message, name)],
    )
    if listener is not None:
        listener.execution_finished(result)
    return result


class ProgressPrinter:
    """Writes each state's progress as a line, prefixed with the execution's name (executions may overlap)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def state_entered(self, execution: str, visit: StateVisit) -> None:
        self.line(f"{execution}  {visit.name}: entered")

    def state_retried(self, execution: str, visit: StateVisit) -> None:
        self.line(f"{execution}  {visit.name}: retrying after {visit.error} (attempt {visit.attempts})")

    def state_exited(self, execution: str, visit: StateVisit) -> None:
        if visit.failed:
            outcome = f"failed with {visit.error}"
        elif visit.state_type == "Fail":
            outcome = "failed the execution"
        else:
            outcome = "ok"
        self.line(f"{execution}  {visit.name}: {outcome} in {visit.seconds:.2f} s")

    def execution_finished(self, result: ExecutionResult) -> None:
        duration = f" in {result.seconds:.1f} s" if result.seconds is not None else ""
        failure = f" at {result.failed_state}: {result.error}" if result.status != "SUCCEEDED" else ""
        self.line(f"{result.name}  {result.status}{failure}{duration}")
