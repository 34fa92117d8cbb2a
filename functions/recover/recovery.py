"""Recover: the rollback of an execution that never reached its failure path (stopped, timed out).

It runs in the recovery state machine (cdk/recovery.py) once every Lambda invocation of the stopped execution has
ended, and only while that execution still holds its lock: the lease is renewed first (fencing). Were the lock
taken by another execution in between, that one may have changed or deployed the prefix since: nothing is put
back and the notification asks a person to compare.
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
    if not has_restore_point(bucket, plan.execution):
        # No snapshot: the prefix was never touched.
        return RestoreResult(status="nothing to restore", prefix=repo_prefix(plan.workspace, plan.deployment, plan.repo))
    return RollbackFailure(
        error=LOCK_LOST,
        cause=f"execution {plan.execution} no longer holds the lock {plan.lock_key}: another execution may have "
              f"changed or deployed {plan.prefix} since, so nothing was put back. Compare the prefix with "
              f"{restore_point_key(plan.execution)} and re-run the last deploy of that deployment",
    )
