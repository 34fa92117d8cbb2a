"""ClearPrefix step: empty the repo's prefix so that Upload leaves exactly the requested files."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.shared.models import Target
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics

logger = step_logger("clear_prefix")
tracer = Tracer(service="clear_prefix")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    with step_metrics("clear_prefix", dimensions(target.workspace, target.deployment, target.repo)) as metrics:
        result = clear_repo_prefix(os.environ["DAG_BUCKET"], target)
        metrics.add_metric(name="clear_prefix.deleted", unit=MetricUnit.Count, value=result.deleted)
    logger.info("prefix cleared", extra=result.model_dump())
    return result.model_dump()
