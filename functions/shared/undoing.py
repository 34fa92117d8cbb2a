"""Undoing an execution's change, after a failure (Rollback) or a stop (Recover): the repo prefix put back as the
snapshot recorded, and the change withdrawn if it had been deferred, so that no later ship records it as live
(functions/shared/deferred_ships.py)."""

from functions.shared.deferred_ships import withdraw
from functions.shared.execution_state import RestoreResult, RollbackResult, RunScope
from functions.shared.restore_point import restore
from functions.shared.ship_slot import end_ship


def undo_change(bucket: str, table: str, lock_key: str, scope: RunScope) -> RestoreResult:
    result = restore(bucket, scope)
    withdraw(table, lock_key, scope.execution)
    return result


def roll_back(bucket: str, table: str, lock_key: str, scope: RunScope) -> RollbackResult:
    """Rollback's: undo the change, then end the execution's ship if its Deploy had handed the lock over to one:
    only once the repo is back may another execution gather it."""
    restored = undo_change(bucket, table, lock_key, scope)
    return RollbackResult(**restored.to_json(), ship_ended=end_ship(table, lock_key, scope.execution))
