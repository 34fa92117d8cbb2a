"""Following an execution: its history read into state visits, as the progress display and the report see it."""

from datetime import datetime, timedelta, timezone

from local_mode.executions import ExecutionResult, HistoryReader, mentions

START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def history(*events: tuple[str, dict]) -> list[dict]:
    built = []
    for number, (kind, details) in enumerate(events, 1):
        event = {"id": number, "type": kind, "timestamp": START + timedelta(seconds=number)}
        key = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails"}.get(
            next((suffix for suffix in ("StateEntered", "StateExited") if kind.endswith(suffix)), ""),
            f"{kind[0].lower()}{kind[1:]}EventDetails",
        )
        if details:
            event[key] = details
        built.append(event)
    return built


class Recorder:
    def __init__(self):
        self.lines = []

    def state_entered(self, execution, visit):
        self.lines.append(("entered", visit.name))

    def state_retried(self, execution, visit):
        self.lines.append(("retried", visit.name, visit.error, visit.attempts))

    def state_exited(self, execution, visit):
        self.lines.append(("exited", visit.name, visit.error))


def test_a_caught_failure_after_a_retry_is_followed_state_by_state():
    events = history(
        ("ExecutionStarted", {}),
        ("TaskStateEntered", {"name": "Deploy"}),
        ("TaskScheduled", {}),
        ("TaskFailed", {"error": "AstroUnavailable", "cause": "502"}),
        ("TaskScheduled", {}),
        ("TaskFailed", {"error": "AstroDeployFailed", "cause": "refused"}),
        ("TaskStateExited", {"name": "Deploy"}),
        ("PassStateEntered", {"name": "Deploy failed"}),
        ("PassStateExited", {"name": "Deploy failed"}),
        ("FailStateEntered", {"name": "Failed"}),
        ("ExecutionFailed", {"error": "AstroDeployFailed", "cause": "refused"}),
    )
    recorder = Recorder()
    reader = HistoryReader("run-1", recorder)
    # Read in two polls, as the watcher does: nothing is told twice.
    reader.read(events[:5])
    reader.read(events)

    assert recorder.lines == [
        ("entered", "Deploy"),
        ("retried", "Deploy", "AstroUnavailable", 2),
        ("exited", "Deploy", "AstroDeployFailed"),
        ("entered", "Deploy failed"),
        ("exited", "Deploy failed", None),
        ("entered", "Failed"),
        ("exited", "Failed", None),
    ]
    result = ExecutionResult(name="run-1", arn="arn", status="FAILED", error="AstroDeployFailed", cause="refused",
                             visits=reader.visits, started=START, stopped=START + timedelta(seconds=11))
    assert result.states == ["Deploy", "Deploy failed", "Failed"]
    assert result.failed_state == "Deploy"
    assert [visit.seconds for visit in reader.visits] == [5.0, 1.0, 1.0]


def test_a_retry_that_succeeds_leaves_no_failure_behind():
    reader = HistoryReader("run-2", None)
    reader.read(history(
        ("TaskStateEntered", {"name": "Upload"}),
        ("TaskScheduled", {}),
        ("TaskFailed", {"error": "Lambda.TooManyRequestsException"}),
        ("TaskScheduled", {}),
        ("TaskSucceeded", {"output": "{}"}),
        ("TaskStateExited", {"name": "Upload"}),
    ))
    [visit] = reader.visits
    assert (visit.attempts, visit.failed) == (2, False)


def test_an_aborted_execution_fails_in_the_state_it_was_in():
    reader = HistoryReader("run-3", None)
    reader.read(history(
        ("TaskStateEntered", {"name": "Parse"}),
        ("TaskStateExited", {"name": "Parse"}),
        ("TaskStateEntered", {"name": "ClearPrefix"}),
        ("TaskScheduled", {}),
        ("ExecutionAborted", {}),
    ))
    result = ExecutionResult(name="run-3", arn="arn", status="ABORTED", error=None, cause=None,
                             visits=reader.visits, started=START, stopped=None)
    assert result.failed_state == "ClearPrefix"
    assert reader.visits[-1].error == "ABORTED"


def test_a_failure_the_execution_resumed_from_is_not_where_it_failed():
    reader = HistoryReader("run-4", None)
    reader.read(history(
        ("TaskStateEntered", {"name": "WaitForLock"}),
        ("TaskScheduled", {}),
        # The lock was released before the wait began: caught, and the execution takes it.
        ("TaskFailed", {"error": "LockFree"}),
        ("TaskStateExited", {"name": "WaitForLock"}),
        ("TaskStateEntered", {"name": "Deploy"}),
        ("TaskScheduled", {}),
        ("TaskFailed", {"error": "AstroDeployFailed", "cause": "refused"}),
        ("TaskStateExited", {"name": "Deploy"}),
        ("FailStateEntered", {"name": "Failed"}),
        ("ExecutionFailed", {"error": "AstroDeployFailed", "cause": "refused"}),
    ))
    result = ExecutionResult(name="run-4", arn="arn", status="FAILED", error="AstroDeployFailed", cause="refused",
                             visits=reader.visits, started=START, stopped=None)
    assert result.failed_state == "Deploy"


def test_a_notification_belongs_to_the_execution_it_names_exactly():
    message = "Execution: repo-20250101T000000-1\nConsole: https://console/executions/details/arn:sm:repo-20250101T000000-1"
    assert mentions(message, "repo-20250101T000000-1")
    assert not mentions(message.replace("-1", "-10"), "repo-20250101T000000-1")
    assert not mentions(message, "repo-20250101T000000")
