"""ClearPrefix step: empty the repo's prefix so that Upload leaves exactly the requested files."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.shared.execution_state import RunScope
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("clear_prefix")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("clear_prefix")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RunScope.from_json(event)
    with step_metrics("clear_prefix", dimensions(scope.workspace, scope.deployment, scope.repo)) as metrics:
        result = clear_repo_prefix(os.environ["DAG_BUCKET"], scope)
        metrics.add_metric(name="clear_prefix.deleted", unit=MetricUnit.Count, value=result.deleted)
    logger.info("prefix cleared", extra=result.to_json())
    return result.to_json()
