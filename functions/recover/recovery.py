"""Recover: the rollback of an execution that never reached its failure path (stopped, timed out).

It runs in the recovery state machine (cdk/recovery.py) once every Lambda invocation of the stopped execution has
ended, and only while that execution still holds its lock: the lease is renewed first (fencing). Were the lock
taken by another execution in between, that one may have changed or deployed the prefix since: nothing is put
back and the notification asks a person to compare. An execution stopped after it deferred its ship released the
lock with its change complete: a later ship carries it (or has), and nothing is put back either.
"""

from functions.shared.execution_state import PlanSummary, RestoreResult, RollbackFailure
from functions.shared.locking import keep
from functions.shared.paths import repo_prefix, restore_point_key
from functions.shared.restore_point import has_restore_point, restore

LOCK_LOST = "LockLost"


def recover_prefix(bucket: str, table: str, plan: PlanSummary, lease_seconds: int) -> RestoreResult | RollbackFailure:
    """Put the repo prefix back as the snapshot recorded, if the stopped execution still holds its lock."""
    if keep(table, plan.lock_key, plan.execution, lease_seconds):
        return restore(bucket, plan)
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
    from functions.shared.deferred_ships import read_deferred
    from functions.shared.manifest import record_of_execution

    if any(entry.execution == plan.execution for entry in read_deferred(table, plan.lock_key)):
        return True
    return record_of_execution(bucket, plan.workspace, plan.deployment, plan.repo, plan.execution) is not None
