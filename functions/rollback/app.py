"""Rollback step: after a failure from Snapshot on, put the repo prefix back exactly as the snapshot recorded."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.execution_state import RunScope
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.restore_point import restore

logger = step_logger("rollback")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("rollback")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RunScope.from_json(event)
    with step_metrics("rollback", dimensions(scope.workspace, scope.deployment, scope.repo)):
        result = restore(os.environ["DAG_BUCKET"], scope)
    logger.info("rollback finished", extra=result.to_json())
    return result.to_json()
