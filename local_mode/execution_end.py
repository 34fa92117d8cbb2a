"""Executions end as they end on AWS: at once, while the Lambda invocation in flight runs on.

On AWS, StopExecution (or the execution's timeout) ends the execution at that moment: DescribeExecution answers
ABORTED (TIMED_OUT) with that stop date and the status-change event goes out, while a Lambda invocation the
execution started keeps running to its end (Lambda cannot cancel an invocation) and its result is discarded.
moto's interpreter lets the invocation finish too, but reports the execution RUNNING until it has: whatever reacts
to the end would never meet the invocation still running. For the lifetime of a local world, an execution
stopped, or timed out with `time_out_execution`, is ended at once; the interpreter's own bookkeeping, when the
invocation returns, keeps that end.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from moto.core import DEFAULT_ACCOUNT_ID
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

ENDED_BY_CALLER = (ExecutionStatus.ABORTED, ExecutionStatus.TIMED_OUT)


class EndSeamMoved(RuntimeError):
    """moto no longer offers the methods this module wraps."""


def _stop_at_once(original):
    def stop(self: Execution, stop_date: datetime, error: str | None, cause: str | None) -> None:
        original(self, stop_date, error, cause)
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status, self.stop_date = ExecutionStatus.ABORTED, stop_date

    return stop


def _keep_the_end(original):
    def reflect(self: BaseExecutionWorkerCommunication) -> None:
        if self.execution.exec_status in ENDED_BY_CALLER:
            return
        original(self)

    return reflect


@contextmanager
def executions_end_at_once() -> Iterator[None]:
    """Stops (and `time_out_execution`) end executions at once for the block."""
    stop = getattr(Execution, "stop", None)
    reflect = getattr(BaseExecutionWorkerCommunication, "_reflect_execution_status", None)
    if stop is None or reflect is None:
        raise EndSeamMoved("moto's Execution.stop or _reflect_execution_status moved: adapt local_mode/execution_end.py")
    Execution.stop = _stop_at_once(stop)
    BaseExecutionWorkerCommunication._reflect_execution_status = _keep_the_end(reflect)
    try:
        yield
    finally:
        Execution.stop = stop
        BaseExecutionWorkerCommunication._reflect_execution_status = reflect


def time_out_execution(execution_arn: str, region: str) -> None:
    """End a running execution as its timeout would, now: TIMED_OUT, its invocation in flight left running.

    The stack's execution timeout is hours; this moves its moment, not what happens at it.
    """
    execution = stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][region].describe_execution(execution_arn)
    if execution.exec_status != ExecutionStatus.RUNNING:
        raise ValueError(f"{execution_arn} is {execution.exec_status}, not RUNNING")
    execution.exec_worker.env.set_timed_out()
    execution.exec_status, execution.stop_date = ExecutionStatus.TIMED_OUT, datetime.now(UTC)
