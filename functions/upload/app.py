"""Upload step: copy the planned files into the repo's prefix."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.execution_state import RunScope
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.plan_store import load_plan
from functions.upload.copying import upload_plan

logger = step_logger("upload")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("upload")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RunScope.from_json(event)
    bucket = os.environ["DAG_BUCKET"]
    with step_metrics("upload", dimensions(scope.workspace, scope.deployment, scope.repo)) as metrics:
        result = upload_plan(bucket, load_plan(bucket, scope.execution))
        metrics.add_metric(name="upload.files", unit=MetricUnit.Count, value=result.copied)
        metrics.add_metric(name="upload.bytes", unit=MetricUnit.Bytes, value=result.bytes)
    logger.info("files uploaded", extra=result.to_json())
    return result.to_json()
