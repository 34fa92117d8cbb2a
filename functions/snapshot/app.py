"""Snapshot step: record the current version of every object under the repo prefix before it changes."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.models import Target
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics
from functions.shared.restore_point import save_restore_point

logger = step_logger("snapshot")
tracer = Tracer(service="snapshot")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    with step_metrics("snapshot", dimensions(target.workspace, target.deployment, target.repo)):
        summary = save_restore_point(os.environ["DAG_BUCKET"], target)
    logger.info("restore point saved", extra=summary.model_dump())
    return summary.model_dump()
