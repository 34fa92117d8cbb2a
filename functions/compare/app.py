"""CompareWithLive step, under the lock: the request's files against what is live for its repo. The state
machine's "Unchanged?" skips the ship when nothing would change (and the request does not force it).

Under the lock, not before it: another execution of the same repo may ship between Parse and AcquireLock.
"""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.execution_state import RunScope
from functions.shared.live_comparison import compare_with_live
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.plan_store import load_plan

logger = step_logger("compare")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("compare")
def handler(event: dict, context: LambdaContext) -> dict:
    scope = RunScope.from_json(event)
    bucket = os.environ["DAG_BUCKET"]
    with step_metrics("compare", dimensions(scope.workspace, scope.deployment, scope.repo)):
        comparison = compare_with_live(bucket, load_plan(bucket, scope.execution))
    logger.info("compared with what is live", extra={"unchanged": comparison.unchanged, "reason": comparison.reason})
    return comparison.to_json()
