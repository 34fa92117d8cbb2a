"""The lock's waker: each removal of a lock item (a release, a stale lease freed, TTL) that DynamoDB's stream
delivers hands the lock's turn to the longest-waiting execution still waiting (functions/shared/locking.py)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.locking import wake_next, waiters_in
from functions.shared.observability import step_logger, traced

logger = step_logger("wake_waiters")


@logger.inject_lambda_context
@traced("wake_waiters")
def handler(event: dict, context: LambdaContext) -> dict:
    woken = {}
    # The event source mapping passes only REMOVE records, with the item as it was (OLD_IMAGE).
    for record in event.get("Records", []):
        image = record["dynamodb"].get("OldImage", {})
        key = image.get("lock_key", {}).get("S")
        if key is None:
            continue
        waiter = wake_next(os.environ["LOCK_TABLE"], key, waiters_in(image))
        if waiter is not None:
            woken[key] = waiter.execution
        logger.info("lock released", extra={"lock_key": key, "woken": waiter.execution if waiter else None})
    return {"woken": woken}
