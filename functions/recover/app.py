"""Recover step of the recovery state machine: put a stopped or timed-out execution's repo prefix back, fenced by
its lock or its ship slot (functions/recover/recovery.py)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.recover.recovery import recover_prefix
from functions.shared.execution_state import PlanSummary
from functions.shared.observability import CORRELATION_ID_PATH, step_logger, traced

logger = step_logger("recover")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("recover")
def handler(event: dict, context: LambdaContext) -> dict:
    plan = PlanSummary.from_json(event)
    result = recover_prefix(os.environ["DAG_BUCKET"], os.environ["LOCK_TABLE"], plan,
                            int(os.environ["LOCK_LEASE_SECONDS"]),
                            lambda: context.get_remaining_time_in_millis() / 1000)
    logger.warning("execution ended without its failure path: recovered", extra=result.to_json())
    return result.to_json()
