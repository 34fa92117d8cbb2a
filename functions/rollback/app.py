"""Restore points: Snapshot before the repo prefix changes, Rollback after a failure, Recover after a stop.

Three Lambda functions share this asset, each with its own role:
- `snapshot_handler` (state Snapshot) records the prefix's current versions;
- `restore_handler` (state Rollback) puts them back when a later step failed;
- `recover_handler` runs on EventBridge's "execution ABORTED / TIMED_OUT" events, where the state machine's own
  failure path never runs: it restores, frees the deployment's lock and notifies.
"""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from rollback.recovery import ExecutionEnded, recover_execution
from rollback.restore_point import restore, save_restore_point
from shared.models import Target
from shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics

logger = step_logger("rollback")
tracer = Tracer(service="rollback")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def snapshot_handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    with step_metrics("snapshot", dimensions(target.workspace, target.deployment, target.repo)):
        summary = save_restore_point(os.environ["DAG_BUCKET"], target)
    logger.info("restore point saved", extra=summary.model_dump())
    return summary.model_dump()


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def restore_handler(event: dict, context: LambdaContext) -> dict:
    target = parse(event=event, model=Target)
    with step_metrics("rollback", dimensions(target.workspace, target.deployment, target.repo)):
        result = restore(os.environ["DAG_BUCKET"], target)
    logger.info("rollback finished", extra=result.model_dump())
    return result.model_dump()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def recover_handler(event: dict, context: LambdaContext) -> dict:
    ended = ExecutionEnded.model_validate(event["detail"])
    logger.set_correlation_id(ended.name)
    result = recover_execution(ended)
    logger.warning("execution ended without its failure path", extra={"status": ended.status, **result})
    return result
