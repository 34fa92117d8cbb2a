"""The deployment's lock, from the state machine: AcquireLock takes it, or says how long to wait for it (or for
the ship in flight that carries a change of the repo: functions/shared/ship_slot.py); WaitForLock waits for that
release; ShipOrDefer decides whether the holder ships or lets a later ship carry its change; DeferShip releases
the lock and waits for that ship (functions/shared/deferred_ships.py). The waits are callback tasks: the function
is given their task token."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.acquire_lock.taking import LockRequest, take_lock
from functions.shared.deferred_ships import DEFER, SHIP_OR_DEFER, coalesces, decide, defer
from functions.shared.documents import Document
from functions.shared.locking import current_waiters, wait_for_release
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.ship_slot import ship_in_flight, slot_key

logger = step_logger("lock")


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
    with step_metrics("lock", dimensions(request.workspace, request.deployment, request.repo)) as metrics:
        state = take_lock(request, os.environ["LOCK_TABLE"], int(os.environ["LOCK_LEASE_SECONDS"]),
                          int(os.environ["LOCK_MAX_WAIT_SECONDS"]))
        if state.acquired:
            metrics.add_metric(name="lock.wait", unit=MetricUnit.Seconds, value=state.waited_seconds)
    logger.info("lock acquired" if state.acquired else "lock busy", extra=state.to_json())
    return state.to_json()


def wait(request: LockWait) -> None:
    """Register as a waiter (raises LockFree when there is nothing to wait for); the task's result comes later,
    from the waker, or its timeout ends the wait."""
    state = request.state
    ship = state.lock.ship_in_flight if state.lock else None
    # A ship in flight is waited for in its slot's item, whose removal wakes its waiters as the lock's does.
    key = slot_key(state.lock_key) if ship else state.lock_key
    announced = wait_for_release(os.environ["LOCK_TABLE"], key, state.execution, state.repo, request.task_token)
    waited_for = f"the end of the ship of {ship}" if ship else "the lock's release"
    logger.info(f"waiting for {waited_for}" if announced else "lock item full: waiting out the backoff",
                extra={"lock_key": key})


def ship_or_defer(state: LockRequest) -> dict:
    table = os.environ["LOCK_TABLE"]
    slot = ship_in_flight(table, state.lock_key) if coalesces(state) else None
    decision = decide(state, state.lock_key, current_waiters(table, state.lock_key),
                      slot.holder if slot else None)
    logger.info("deferring the ship" if decision.defer else "shipping", extra=decision.to_json())
    return decision.to_json()


def defer_ship(request: LockWait) -> None:
    """Release the lock with the change recorded as deferred; the task's result comes later, from the waker."""
    defer(os.environ["LOCK_TABLE"], request.state.lock_key, request.state, request.task_token)
    logger.info("lock released, waiting for a ship to carry the change", extra={"lock_key": request.state.lock_key})
