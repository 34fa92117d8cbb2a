"""Rollback step: after a failure from Snapshot on, put the repo prefix back exactly as the snapshot recorded."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.models import Target
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics
from functions.shared.restore_point import restore

logger = step_logger("rollback")
tracer = Tracer(service="rollback")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    with step_metrics("rollback", dimensions(target.workspace, target.deployment, target.repo)):
        result = restore(os.environ["DAG_BUCKET"], target)
    logger.info("rollback finished", extra=result.model_dump())
    return result.model_dump()
