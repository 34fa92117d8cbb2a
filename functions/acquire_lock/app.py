"""AcquireLock step: take the deployment's lock, or say how long to wait for it. WaitForLock: wait for its release
(the same function, given the callback task's token)."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.documents import Document
from functions.shared.execution_state import LockState, RunScope
from functions.shared.locking import acquire, wait_for_release
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("lock")


class LockRequest(RunScope):
    lock_key: str  # Parse's: the key the failure path releases
    lock: LockState | None = None  # on a loop, the previous attempt's


class LockWait(Document):
    """WaitForLock's input: the state, and the token the waker sends success to once the lock is released."""

    state: LockRequest
    task_token: str


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("lock")
def handler(event: dict, context: LambdaContext) -> dict | None:
    if "task_token" in event:
        wait(LockWait.from_json(event))
        return None
    request = LockRequest.from_json(event)
    with step_metrics("lock", dimensions(request.workspace, request.deployment, request.repo)) as metrics:
        state = acquire(
            table=os.environ["LOCK_TABLE"],
            key=request.lock_key,
            execution=request.execution,
            lease_seconds=int(os.environ["LOCK_LEASE_SECONDS"]),
            max_wait_seconds=int(os.environ["LOCK_MAX_WAIT_SECONDS"]),
            previous=request.lock,
        )
        if state.acquired:
            metrics.add_metric(name="lock.wait", unit=MetricUnit.Seconds, value=state.waited_seconds)
    logger.info("lock acquired" if state.acquired else "lock busy", extra=state.to_json())
    return state.to_json()


def wait(request: LockWait) -> None:
    """Register as a waiter (raises LockFree when there is nothing to wait for); the task's result comes later,
    from the waker, or its timeout ends the wait."""
    announced = wait_for_release(os.environ["LOCK_TABLE"], request.state.lock_key, request.state.execution,
                                 request.task_token)
    logger.info("waiting for the lock's release" if announced else "lock item full: waiting out the backoff",
                extra={"lock_key": request.state.lock_key})
