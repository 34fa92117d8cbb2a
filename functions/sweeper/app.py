"""Sweeper: starts recoveries. EventBridge hands it the status event of each execution that ended without its
failure path (stopped, timed out, failed with a terminal error: functions/shared/execution_ends.py) and runs it on a
schedule (the sweep: recoveries whose event never came, leases nothing will free)."""

import os
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.observability import step_logger, traced
from functions.sweeper.recovery_start import RecoverySettings, start_recovery
from functions.sweeper.sweeping import sweep

logger = step_logger("sweeper")
STATUS_CHANGE = "Step Functions Execution Status Change"


@logger.inject_lambda_context
@traced("sweeper")
def handler(event: dict, context: LambdaContext) -> dict:
    settings = RecoverySettings.from_environment()
    if event.get("detail-type") == STATUS_CHANGE:
        ended = event["detail"]
        logger.set_correlation_id(ended["name"])
        started = start_recovery(ended["executionArn"], settings)
        logger.warning("execution ended without its failure path", extra={"status": ended["status"],
                                                                            "error": ended.get("error"),
                                                                            "recovery_started": started})
        return {"recovery_started": started}
    report = sweep(os.environ["LOCK_TABLE"], settings, datetime.now(UTC))
    logger.info("swept", extra=report.to_json())
    return report.to_json()
