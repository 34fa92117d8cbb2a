"""The lock's waker: each removal of a lock item (a release, a stale lease freed, TTL) that DynamoDB's stream
delivers hands the lock's turn to the longest-waiting execution still waiting, and delivers what a ship told the
deferred executions it carried (functions/wake_waiters/waking.py)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.observability import step_logger, traced
from functions.wake_waiters.waking import wake_after_removals

logger = step_logger("wake_waiters")


@logger.inject_lambda_context
@traced("wake_waiters")
def handler(event: dict, context: LambdaContext) -> dict:
    # The event source mapping passes only REMOVE records, with the item as it was (OLD_IMAGE).
    woken = wake_after_removals(os.environ["LOCK_TABLE"], event.get("Records", []))
    logger.info("locks released", extra={"woken": woken})
    return {"woken": {key: execution for key, execution in woken.items() if execution}}
