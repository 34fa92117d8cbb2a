"""Rollback step: after a failure from Snapshot on, put the repo prefix back exactly as the snapshot recorded; then
withdraw the change if it had been deferred (no later ship may record it as live: functions/shared/
deferred_ships.py), and end the execution's ship, if its Deploy had handed the lock over to one (functions/shared/
ship_slot.py): only once the repo is back may another execution gather it."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.execution_state import RunScope
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.undoing import roll_back

logger = step_logger("rollback")


class RollbackInput(RunScope):
    lock_key: str  # Parse's: the key of the deployment's lock, and of its ship slot


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("rollback")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RollbackInput.from_json(event)
    with step_metrics("rollback", dimensions(scope.workspace, scope.deployment, scope.repo)):
        result = roll_back(os.environ["DAG_BUCKET"], os.environ["LOCK_TABLE"], scope.lock_key, scope)
    logger.info("rollback finished", extra=result.to_json())
    return result.to_json()
