"""Snapshot step: record the current version of every object under the repo prefix before it changes."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.dag_ids import check_dag_ids_still_free
from functions.shared.execution_state import RunScope
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.restore_point import save_restore_point

logger = step_logger("snapshot")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("snapshot")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RunScope.from_json(event)
    with step_metrics("snapshot", dimensions(scope.workspace, scope.deployment, scope.repo)):
        # Other repos may have shipped while this execution waited for the lock: nothing has changed yet.
        checked = check_dag_ids_still_free(os.environ["DAG_BUCKET"], scope)
        summary = save_restore_point(os.environ["DAG_BUCKET"], scope)
    logger.info("dag_ids still free", extra={"dag_ids": checked})
    logger.info("restore point saved", extra=summary.to_json())
    return summary.to_json()
