"""Recover: the rollback of an execution that never reached its failure path (stopped, timed out).

It runs in the recovery state machine (cdk/recovery.py) once every Lambda invocation of the stopped execution has
ended, and only while that execution still holds its lock: the lease is renewed first (fencing). Were the lock
taken by another execution in between, that one may have changed or deployed the prefix since: nothing is put
back and the notification asks a person to compare. An execution stopped after it deferred its ship released the
lock with its change complete: a later ship carries it (or has), and nothing is put back either.

An execution stopped after its Deploy handed the lock over to its ship (functions/shared/ship_slot.py), whose
invocation then failed or was killed, still holds the ship slot: nobody has changed its repo or gathered since.
The slot fences the restore; the lock is taken back (its holders never wait for the slot, so it comes free) for
the re-ship, and the slot ended.
"""

import math
import time
from collections.abc import Callable

from functions.shared.deferred_ships import read_deferred
from functions.shared.execution_state import PlanSummary, RestoreResult, RollbackFailure
from functions.shared.locking import acquire, keep
from functions.shared.paths import repo_prefix, restore_point_key
from functions.shared.restore_point import has_restore_point
from functions.shared.ship_slot import end_ship, keep_slot
from functions.shared.undoing import undo_change

LOCK_LOST = "LockLost"
# Between attempts to take the lock back for a re-ship, and what is left of Recover's time when it gives up.
LOCK_RETRY_SECONDS = 2
LOCK_GIVE_UP_MARGIN_SECONDS = 10


def recover_prefix(bucket: str, table: str, plan: PlanSummary, lease_seconds: int,
                   remaining_seconds: Callable[[], float] = lambda: math.inf) -> RestoreResult | RollbackFailure:
    """Put the repo prefix back as the snapshot recorded, if the stopped execution still holds its lock, or its
    ship slot (then it takes the lock again for the re-ship, within `remaining_seconds`)."""
    if keep(table, plan.lock_key, plan.execution, lease_seconds):
        return undo_change(bucket, table, plan.lock_key, plan)
    if keep_slot(table, plan.lock_key, plan.execution, lease_seconds):
        return _recover_handed_over(bucket, table, plan, lease_seconds, remaining_seconds)
    prefix = repo_prefix(plan.workspace, plan.deployment, plan.repo)
    if not has_restore_point(bucket, plan.execution):
        # No snapshot: the prefix was never touched.
        return RestoreResult(status="nothing to restore", prefix=prefix)
    if deferred_or_carried(bucket, table, plan):
        return RestoreResult(status="deferred", prefix=prefix)
    return RollbackFailure(
        error=LOCK_LOST,
        cause=f"execution {plan.execution} no longer holds the lock {plan.lock_key}: another execution may have "
              f"changed or deployed {plan.prefix} since, so nothing was put back. Compare the prefix with "
              f"{restore_point_key(plan.execution)} and re-run the last deploy of that deployment",
    )


def deferred_or_carried(bucket: str, table: str, plan: PlanSummary) -> bool:
    """Whether the execution deferred its ship: its change still waits for one, or a later ship carried it (the
    repo's live manifest names it)."""
    # Only for an execution that no longer holds its lock: kept out of the handler's import (its cold start).
    from functions.shared.manifest import record_of_execution

    if any(entry.execution == plan.execution for entry in read_deferred(table, plan.lock_key)):
        return True
    return record_of_execution(bucket, plan.workspace, plan.deployment, plan.repo, plan.execution) is not None


def _recover_handed_over(bucket: str, table: str, plan: PlanSummary, lease_seconds: int,
                         remaining_seconds: Callable[[], float]) -> RestoreResult | RollbackFailure:
    result = undo_change(bucket, table, plan.lock_key, plan)
    while remaining_seconds() > LOCK_GIVE_UP_MARGIN_SECONDS:
        if acquire(table, plan.lock_key, plan.execution, lease_seconds, max_wait_seconds=lease_seconds).acquired:
            end_ship(table, plan.lock_key, plan.execution)
            return result
        time.sleep(LOCK_RETRY_SECONDS)
    # The next ship carries the restored prefix: Astro holds what S3 does once it has landed.
    end_ship(table, plan.lock_key, plan.execution)
    return RollbackFailure(
        error=LOCK_LOST,
        cause=f"execution {plan.execution}'s ship failed or was cut off; {plan.prefix} was restored ("
              f"{result.restored} restored, {result.removed} removed), but the lock {plan.lock_key} could not be "
              "taken back in time to re-ship it: the deployment's next ship carries it",
    )
