"""What a release of a deployment's lock sets going, as the waker sees it in the lock table's stream: the
outcomes a ship left for the deferred executions it carried (functions/shared/deferred_ships.py) are sent, and the
longest-waiting execution is woken (functions/shared/locking.py); if none waits, the longest-deferred execution,
to ship the deferred changes itself."""

import json

from functions.shared.deferred_ships import deferred_in, forget_told, ship_yourself_outcome, ships_item, told_in
from functions.shared.locking import Waiter, send_success, waiters_in, wake_next


def after_release(table: str, key: str, waiters: list[Waiter]) -> str | None:
    """Act on a release of the lock `key` whose item held `waiters`; return the execution woken (None: nobody)."""
    item = ships_item(table, key)
    told = told_in(item)
    for entry in told:
        send_success(entry.task_token, json.loads(entry.outcome))
    forget_told(table, key, told)
    waiter = wake_next(table, key, waiters)
    if waiter:
        return waiter.execution
    for deferred in deferred_in(item):
        if send_success(deferred.task_token, ship_yourself_outcome(key, deferred.failed_ships).to_json()):
            return deferred.execution
    return None


def wake_after_removals(table: str, records: list[dict]) -> dict[str, str | None]:
    """For each lock item a stream record says was removed (its image as it was), act on its release
    (`after_release`); return each lock's key with the execution woken (None: nobody)."""
    woken: dict[str, str | None] = {}
    for record in records:
        image = record["dynamodb"].get("OldImage", {})
        key = image.get("lock_key", {}).get("S")
        if key is not None:
            woken[key] = after_release(table, key, waiters_in(image))
    return woken
