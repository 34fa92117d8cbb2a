"""AcquireLock's logic: take the deployment's lock, unless the ship in flight carries a change of the repo
(functions/shared/ship_slot.py): then the repo must not change before that ship has ended, and the execution waits
for it instead."""

import time
from dataclasses import replace

from functions.shared.deferred_ships import coalesces, has_deferred_change
from functions.shared.errors import LockWaitExpired
from functions.shared.execution_state import LockState, RunScope
from functions.shared.locking import acquire, backoff_seconds, release
from functions.shared.ship_slot import ShipSlot, ship_in_flight


class LockRequest(RunScope):
    lock_key: str  # Parse's: the key the failure path releases
    lock: LockState | None = None  # on a loop, the previous attempt's


def take_lock(request: LockRequest, table: str, lease_seconds: int, max_wait_seconds: int) -> LockState:
    """Take the lock, and keep it unless the ship in flight carries a change of the repo, or one of its changes
    waits for the next ship: then the repo must not change before that ship has ended."""
    state = acquire(table=table, key=request.lock_key, execution=request.execution, lease_seconds=lease_seconds,
                    max_wait_seconds=max_wait_seconds, previous=request.lock)
    if not state.acquired:
        return state
    flush_first = has_deferred_change(table, request.lock_key, request)
    slot = ship_in_flight(table, request.lock_key) if coalesces(request) else None
    if slot is None or slot.holder == request.execution or not (request.repo in slot.repos or flush_first):
        return replace(state, flush_first=flush_first)
    release(table, request.lock_key, request.execution)
    return wait_for_ship(state, slot, max_wait_seconds)


def wait_for_ship(taken: LockState, slot: ShipSlot, max_wait_seconds: int) -> LockState:
    """The answer of an AcquireLock that took the lock, then released it, because the ship in flight carries a
    change of its repo (or one waits for the next ship): wait for that ship to end, within the lock's wait."""
    if time.time() - taken.waiting_since >= max_wait_seconds:
        raise LockWaitExpired(
            f"the ship of execution {slot.holder} to {taken.key} carries a change of this repo and has not ended "
            f"after more than {max_wait_seconds} s of waiting; nothing was changed. Re-run when it has ended."
        )
    return LockState(
        key=taken.key, acquired=False, holder=taken.holder, attempt=taken.attempt, waiting_since=taken.waiting_since,
        wait_seconds=backoff_seconds(taken.attempt), ship_in_flight=slot.holder,
    )
