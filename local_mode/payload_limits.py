"""Step Functions' payload limits, as AWS enforces them, on moto's interpreter.

AWS (Step Functions quotas, error handling):
- every state's input and output, a task's input after Parameters, a task's result and an execution's input are
  limited to 256 KiB as UTF-8 encoded JSON;
- past the limit a state fails with `States.DataLimitExceeded`, a terminal error: no Retry retries it and no Catch
  handles it (`States.ALL` does not match it), so the execution fails at once;
- StartExecution refuses an input over the limit;
- a failure's cause is at most 32,768 characters (ExecutionFailedEventDetails).

What moto 5.2 does: it checks a state's output after ResultPath (uncaught, as AWS) and a task's result, but lets
Retry and Catch handle the latter, and it measures ASCII-escaped JSON (six bytes for an "é", UTF-8 has two); it does
not check a task's input or the execution's input, and a Fail state's cause has no limit. `payload_limits()` closes those gaps for the block. AWS documents no outcome for a
Fail state whose cause is too long: the model fails the execution with `States.DataLimitExceeded` instead of the
state's own error, so that a test sees the original error lost.
"""

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry.retry_outcome import RetryOutcome
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
from moto.stepfunctions.parser.asl.component.state.fail.state_fail import StateFail
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
from moto.stepfunctions.parser.asl.component.state import state
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

PAYLOAD_LIMIT_BYTES = 256 * 1024
CAUSE_LIMIT_CHARACTERS = 32_768
DATA_LIMIT_EXCEEDED = StatesErrorNameType.StatesStatesDataLimitExceeded


def payload_bytes(value: Any) -> int:
    """The size Step Functions measures: the value as JSON, UTF-8 encoded."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8"))


def is_within_payload_limit(value: Any) -> bool:
    return payload_bytes(value) <= PAYLOAD_LIMIT_BYTES


def _data_limit_exceeded(env: Environment, cause: str) -> FailureEventException:
    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=DATA_LIMIT_EXCEEDED),
            event_type=HistoryEventType.TaskFailed,
            event_details={
                "taskFailedEventDetails": TaskFailedEventDetails(error=DATA_LIMIT_EXCEEDED.to_name(), cause=cause)
            },
        )
    )


def _is_data_limit_exceeded(failure_event: FailureEvent) -> bool:
    return failure_event.error_name is not None and failure_event.error_name.error_name == DATA_LIMIT_EXCEEDED.to_name()


def _checking_task_input(original, payload_of):
    def eval_parameters(self, env: Environment) -> dict:
        parameters = original(self, env)
        size = payload_bytes(payload_of(parameters))
        if size > PAYLOAD_LIMIT_BYTES:
            raise _data_limit_exceeded(
                env, f"The state/task '{self.name}' has an input of {size} bytes after Parameters, over the "
                f"{PAYLOAD_LIMIT_BYTES}-byte limit.",
            )
        return parameters

    return eval_parameters


def _never_retried(original):
    def handle_retry(self, env: Environment, failure_event: FailureEvent) -> RetryOutcome:
        if _is_data_limit_exceeded(failure_event):
            return RetryOutcome.CannotRetry
        return original(self, env, failure_event)

    return handle_retry


def _never_caught(original):
    def handle_catch(self, env: Environment, failure_event: FailureEvent) -> None:
        if _is_data_limit_exceeded(failure_event):
            raise FailureEventException(failure_event=failure_event)
        original(self, env, failure_event)

    return handle_catch


def _bounded_fail_cause(original):
    def eval_state(self, env: Environment) -> None:
        try:
            original(self, env)
        except FailureEventException as failure:
            cause = (failure.failure_event.event_details or {}).get("taskFailedEventDetails", {}).get("cause") or ""
            if len(cause) > CAUSE_LIMIT_CHARACTERS:
                raise _data_limit_exceeded(
                    env, f"The Fail state '{self.name}' has a cause of {len(cause)} characters, over the "
                    f"{CAUSE_LIMIT_CHARACTERS}-character limit.",
                ) from None
            raise

    return eval_state


def _checking_execution_input(original):
    def start_execution(self, state_machine_arn: str, name=None, execution_input=None, trace_header=None):
        if execution_input is not None and not is_within_payload_limit(execution_input):
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have "
                f"length less than or equal to {PAYLOAD_LIMIT_BYTES}"
            )
        return original(self, state_machine_arn, name, execution_input, trace_header)

    return start_execution


@contextmanager
def payload_limits() -> Iterator[None]:
    """Enforce Step Functions' payload limits on moto's interpreter for the block (see the module's text)."""
    patches = [
        (StateTaskLambda, "_eval_parameters", lambda original: _checking_task_input(original, lambda p: p["Payload"])),
        (StateTaskService, "_eval_parameters", lambda original: _checking_task_input(original, lambda p: p)),
        (ExecutionState, "_handle_retry", _never_retried),
        (ExecutionState, "_handle_catch", _never_caught),
        (StateFail, "_eval_state", _bounded_fail_cause),
        (StepFunctionsParserBackend, "start_execution", _checking_execution_input),
    ]
    with ExitStack() as stack:
        for owner, name, wrap in patches:
            stack.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        # moto's own checks (a state's output, a task's result), measured as AWS measures.
        for module in (state, state_task_lambda, state_task_service):
            stack.enter_context(mock.patch.object(module, "is_within_size_quota", is_within_payload_limit))
        yield
