"""The deployment's lock, from the state machine: AcquireLock takes it, or says how long to wait for it;
WaitForLock waits for its release; ShipOrDefer decides whether the holder ships or lets a waiter's ship carry its
change; DeferShip releases it and waits for that ship (functions/shared/deferred_ships.py). The waits are callback
tasks: the function is given their task token."""

import os
from dataclasses import replace

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.deferred_ships import DEFER, SHIP_OR_DEFER, decide, defer, has_deferred_change
from functions.shared.documents import Document
from functions.shared.execution_state import LockState, RunScope
from functions.shared.locking import acquire, current_waiters, wait_for_release
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("lock")


class LockRequest(RunScope):
    lock_key: str  # Parse's: the key the failure path releases
    lock: LockState | None = None  # on a loop, the previous attempt's


class LockWait(Document):
    """A callback task's input: the state, and the token to complete once the wait is over (WaitForLock: the lock
    is released; DeferShip: a ship carried the change)."""

    state: LockRequest
    task_token: str


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("lock")
def handler(event: dict, context: LambdaContext) -> dict | None:
    action = event.get("action")
    if action == SHIP_OR_DEFER:
        return ship_or_defer(LockRequest.from_json(event["state"]))
    if action == DEFER:
        defer_ship(LockWait.from_json(event))
        return None
    if "task_token" in event:
        wait(LockWait.from_json(event))
        return None
    request = LockRequest.from_json(event)
    table = os.environ["LOCK_TABLE"]
    with step_metrics("lock", dimensions(request.workspace, request.deployment, request.repo)) as metrics:
        state = acquire(
            table=table,
            key=request.lock_key,
            execution=request.execution,
            lease_seconds=int(os.environ["LOCK_LEASE_SECONDS"]),
            max_wait_seconds=int(os.environ["LOCK_MAX_WAIT_SECONDS"]),
            previous=request.lock,
        )
        if state.acquired:
            metrics.add_metric(name="lock.wait", unit=MetricUnit.Seconds, value=state.waited_seconds)
            state = replace(state, flush_first=has_deferred_change(table, request.lock_key, request))
    logger.info("lock acquired" if state.acquired else "lock busy", extra=state.to_json())
    return state.to_json()


def wait(request: LockWait) -> None:
    """Register as a waiter (raises LockFree when there is nothing to wait for); the task's result comes later,
    from the waker, or its timeout ends the wait."""
    state = request.state
    announced = wait_for_release(os.environ["LOCK_TABLE"], state.lock_key, state.execution, state.repo,
                                 request.task_token)
    logger.info("waiting for the lock's release" if announced else "lock item full: waiting out the backoff",
                extra={"lock_key": state.lock_key})


def ship_or_defer(state: LockRequest) -> dict:
    decision = decide(state, state.lock_key, current_waiters(os.environ["LOCK_TABLE"], state.lock_key))
    logger.info("deferring the ship" if decision.defer else "shipping", extra=decision.to_json())
    return decision.to_json()


def defer_ship(request: LockWait) -> None:
    """Release the lock with the change recorded as deferred; the task's result comes later, from the waker."""
    defer(os.environ["LOCK_TABLE"], request.state.lock_key, request.state, request.task_token)
    logger.info("lock released, waiting for a ship to carry the change", extra={"lock_key": request.state.lock_key})
