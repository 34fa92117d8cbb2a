"""One deploy per deployment at a time: a lease in DynamoDB, keyed by workspace/deployment.

An Astro DAG-only deploy replaces every DAG of a deployment, so two executions for different repos of one
deployment must not interleave. The lock is a lease: a holder that vanished (stopped, timed out, crashed) stops
blocking others when its lease expires, and the lease outlives any execution (the machine's timeout).
"""

import time

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.errors import LockWaitExpired
from functions.shared.execution_state import LockState

FIRST_WAIT_SECONDS = 5
MAX_WAIT_SECONDS = 60


def lock_key(workspace: str, deployment: str, bundle: str = MAIN_BUNDLE) -> str:
    # Neither segments nor bundle names hold "#": keys of different bundles never meet.
    return f"{workspace}/{deployment}" if bundle == MAIN_BUNDLE else f"{workspace}/{deployment}#{bundle}"


def acquire(
    table: str,
    key: str,
    execution: str,
    lease_seconds: int,
    max_wait_seconds: int,
    previous: LockState | None = None,
) -> LockState:
    now = time.time()
    attempt = previous.attempt + 1 if previous else 1
    waiting_since = previous.waiting_since if previous else now
    try:
        client("dynamodb").put_item(
            TableName=table,
            Item={
                "lock_key": {"S": key},
                "holder": {"S": execution},
                "acquired_at": {"N": str(int(now))},
                "expires_at": {"N": str(int(now) + lease_seconds)},
            },
            # Free, expired, or already ours (a retried invocation must not lock itself out).
            ConditionExpression="attribute_not_exists(lock_key) OR expires_at < :now OR holder = :me",
            ExpressionAttributeValues={":now": {"N": str(int(now))}, ":me": {"S": execution}},
        )
        return LockState(
            key=key, acquired=True, holder=execution, attempt=attempt, waiting_since=waiting_since,
            waited_seconds=round(now - waiting_since, 1),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    holder = current_holder(table, key)
    if now - waiting_since >= max_wait_seconds:
        raise LockWaitExpired(
            f"deployment {key} has been locked by execution {holder or 'unknown'} for more than "
            f"{max_wait_seconds} s of waiting; nothing was changed. Re-run when it has finished."
        )
    wait_seconds = min(MAX_WAIT_SECONDS, int(FIRST_WAIT_SECONDS * 1.5 ** (attempt - 1)))
    return LockState(
        key=key, acquired=False, holder=holder, attempt=attempt, waiting_since=waiting_since,
        wait_seconds=wait_seconds,
    )


def current_holder(table: str, key: str) -> str | None:
    item = client("dynamodb").get_item(TableName=table, Key={"lock_key": {"S": key}}, ConsistentRead=True)
    return item.get("Item", {}).get("holder", {}).get("S")


def keep(table: str, key: str, execution: str, lease_seconds: int) -> bool:
    """Renew the lease if `execution` still holds the lock, run out or not (nobody else has taken it since); return
    whether it does. Recovery fences its work with it: what the stopped execution left is put back only while no
    other execution can have deployed in between."""
    now = int(time.time())
    try:
        client("dynamodb").update_item(
            TableName=table,
            Key={"lock_key": {"S": key}},
            UpdateExpression="SET expires_at = :until",
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":until": {"N": str(now + lease_seconds)}, ":me": {"S": execution}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release(table: str, key: str, execution: str) -> bool:
    """Release the lock if `execution` holds it; return whether it did."""
    try:
        client("dynamodb").delete_item(
            TableName=table,
            Key={"lock_key": {"S": key}},
            ConditionExpression="holder = :me",
            ExpressionAttributeValues={":me": {"S": execution}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
