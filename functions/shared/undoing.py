"""Undoing an execution's change, after a failure (Rollback) or a stop (Recover): the repo prefix put back as the
snapshot recorded, and the change withdrawn if it had been deferred, so that no later ship records it as live
(functions/shared/deferred_ships.py)."""

from functions.shared.deferred_ships import withdraw
from functions.shared.execution_state import RestoreResult, RunScope
from functions.shared.restore_point import restore


def undo_change(bucket: str, table: str, lock_key: str, scope: RunScope) -> RestoreResult:
    result = restore(bucket, scope)
    withdraw(table, lock_key, scope.execution)
    return result
