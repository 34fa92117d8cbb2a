"""Upload step: copy the planned files into the repo's prefix."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.models import Target
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics
from functions.shared.plan_store import load_plan
from functions.upload.copying import upload_plan

logger = step_logger("upload")
tracer = Tracer(service="upload")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    bucket = os.environ["DAG_BUCKET"]
    with step_metrics("upload", dimensions(target.workspace, target.deployment, target.repo)) as metrics:
        result = upload_plan(bucket, load_plan(bucket, target.execution))
        metrics.add_metric(name="upload.files", unit=MetricUnit.Count, value=result.copied)
        metrics.add_metric(name="upload.bytes", unit=MetricUnit.Bytes, value=result.bytes)
    logger.info("files uploaded", extra=result.model_dump())
    return result.model_dump()
