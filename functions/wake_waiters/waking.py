"""What a release of a deployment's lock, or the end of its ship (functions/shared/ship_slot.py), sets going, as
the waker sees it in the lock table's stream.

- A release: the outcomes a ship left for the deferred executions it carried (functions/shared/deferred_ships.py)
  are sent, and the longest-waiting execution is woken (functions/shared/locking.py); if none waits and no ship is
  in flight, the longest-deferred execution, to ship the deferred changes itself.
- The end of a ship: the outcomes it left are sent, and the executions waiting for it all woken (each then tries
  the lock). If none still waited and the lock is free, as on a release."""

import json

from functions.shared.deferred_ships import deferred_in, forget_told, ship_yourself_outcome, ships_item, told_in
from functions.shared.locking import Waiter, lease_holder, lock_item, send_success, waiters_in, wake_next
from functions.shared.ship_slot import lock_key_of_slot, ship_in_flight


def _tell(table: str, key: str) -> dict:
    """Send the outcomes the ships of the lock `key` left to tell; return its ships item as it was."""
    item = ships_item(table, key)
    told = told_in(item)
    for entry in told:
        send_success(entry.task_token, json.loads(entry.outcome))
    forget_told(table, key, told)
    return item


def after_release(table: str, key: str, waiters: list[Waiter]) -> str | None:
    """Act on a release of the lock `key` whose item held `waiters`; return the execution woken (None: nobody)."""
    return _hand_on(table, key, waiters, _tell(table, key))


def after_ship(table: str, key: str, ship_waiters: list[Waiter]) -> str | None:
    """Act on the end of the ship of the lock `key`, whose slot's item held `ship_waiters`: wake them all (the
    longest-waiting is returned); if none still waited, act as on the lock's release, the lock being free."""
    item = _tell(table, key)
    woken = [waiter.execution for waiter in ship_waiters
             if send_success(waiter.task_token, {"ship_ended": key, "woken": waiter.execution})]
    if woken:
        # They take the lock in turn; the first to ship carries the deferred changes (or ships them first).
        return woken[0]
    lock = lock_item(table, key)
    if lease_holder(lock):
        # Its holder's release acts in turn.
        return None
    return _hand_on(table, key, waiters_in(lock), item)


def _hand_on(table: str, key: str, waiters: list[Waiter], ships: dict) -> str | None:
    """The lock being free: wake the longest-waiting of `waiters`, else, no ship being in flight, the
    longest-deferred execution of the deployment's ships item `ships`; return the execution woken."""
    waiter = wake_next(table, key, waiters)
    if waiter:
        return waiter.execution
    # A ship in flight carries no deferred change it did not gather: its end wakes one to ship them.
    if ship_in_flight(table, key):
        return None
    for deferred in deferred_in(ships):
        if send_success(deferred.task_token, ship_yourself_outcome(key, deferred.failed_ships).to_json()):
            return deferred.execution
    return None


def wake_after_removals(table: str, records: list[dict]) -> dict[str, str | None]:
    """For each lock item, or ship slot, a stream record says was removed (its image as it was), act on its release
    (`after_release`, `after_ship`); return each lock's key with the execution woken (None: nobody)."""
    woken: dict[str, str | None] = {}
    for record in records:
        image = record["dynamodb"].get("OldImage", {})
        key = image.get("lock_key", {}).get("S")
        if key is None:
            continue
        lock_key = lock_key_of_slot(key)
        if lock_key is None:
            woken[key] = after_release(table, key, waiters_in(image))
        else:
            woken[lock_key] = after_ship(table, lock_key, waiters_in(image))
    return woken
