"""One deploy per deployment at a time: a lease in DynamoDB, keyed by workspace/deployment.

An Astro DAG-only deploy replaces every DAG of a deployment, so two executions for different repos of one
deployment must not interleave. The lock is a lease: a holder that vanished (stopped, timed out, crashed) stops
blocking others when its lease expires, and the lease outlives any execution (the machine's timeout).

Waiters are woken, not left to poll: an execution that finds the lock taken writes its task token into the lock's
item (`waiter:<execution>`) and sleeps in a callback task. Whatever deletes the item (the holder's release, the
Sweeper freeing a stale lease, TTL) puts it on the table's stream, and the waker (functions/wake_waiters) hands
the lock's turn to the longest-waiting execution still waiting, putting the others back. Each sleep is bounded by
the backoff below, so a lost wake-up costs at most one backoff. The waker also delivers at each release what the
deployment's deferred ships left to tell (functions/wake_waiters/waking.py).
"""

import json
import math
import random
import time
from collections.abc import Mapping

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.errors import LockFree, LockWaitExpired
from functions.shared.execution_state import LockState
from functions.shared.records import FrozenRecord

FIRST_WAIT_SECONDS = 5
MAX_WAIT_SECONDS = 60
WAITER_PREFIX = "waiter:"
# What SendTaskSuccess answers for a token whose task no longer waits (timed out, or its execution ended).
GONE_WAITER_ERRORS = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


def acquire(
    table: str,
    key: str,
    execution: str,
    lease_seconds: int,
    max_wait_seconds: int,
    previous: LockState | None = None,
) -> LockState:
    now = time.time()
    # A lock held before (a deferred execution back to ship itself) starts a wait of its own.
    waiting = previous if previous and not previous.acquired else None
    attempt = waiting.attempt + 1 if waiting else 1
    waiting_since = waiting.waiting_since if waiting else now
    try:
        client("dynamodb").update_item(
            TableName=table,
            Key={"lock_key": {"S": key}},
            # The waiters stay in the item; this execution is no longer one of them.
            UpdateExpression="SET holder = :me, acquired_at = :now, expires_at = :until REMOVE #waiter",
            # Free, expired, or already ours (a retried invocation must not lock itself out).
            ConditionExpression="attribute_not_exists(holder) OR expires_at < :now OR holder = :me",
            ExpressionAttributeNames={"#waiter": waiter_attribute(execution)},
            ExpressionAttributeValues={
                ":now": {"N": str(int(now))}, ":until": {"N": str(int(now) + lease_seconds)}, ":me": {"S": execution},
            },
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
    return LockState(
        key=key, acquired=False, holder=holder, attempt=attempt, waiting_since=waiting_since,
        wait_seconds=backoff_seconds(attempt),
    )


def backoff_seconds(attempt: int) -> int:
    """How long the `attempt`th wait lasts at most, should no wake-up come."""
    backoff = min(MAX_WAIT_SECONDS, int(FIRST_WAIT_SECONDS * 1.5 ** (attempt - 1)))
    # Jittered within its second half: waiters that came in one burst would otherwise all wake at the same moments
    # and rewrite the lock's item together (a hot item, and one large with their tokens).
    return random.randint(math.ceil(backoff / 2), backoff)


def lock_item(table: str, key: str) -> dict:
    """The lock's item as it is now (DynamoDB JSON; empty if there is none)."""
    return client("dynamodb").get_item(TableName=table, Key={"lock_key": {"S": key}}, ConsistentRead=True).get(
        "Item", {})


def lease_holder(item: Mapping[str, dict]) -> str | None:
    """Who holds the lease of a lock item (or ship slot) whose lease has not run out; None if nobody does."""
    if "holder" not in item or int(item["expires_at"]["N"]) < time.time():
        return None
    return item["holder"]["S"]


def current_holder(table: str, key: str) -> str | None:
    return lock_item(table, key).get("holder", {}).get("S")


def current_waiters(table: str, key: str) -> dict[str, str | None]:
    """The executions waiting for the lock now, with the repo each changes."""
    return {waiter.execution: waiter.repo for waiter in waiters_in(lock_item(table, key))}


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


class Waiter(FrozenRecord):
    execution: str
    task_token: str
    since: float
    repo: str | None = None  # the repo it changes (None: a waiter recorded before repos were)


def waiter_attribute(execution: str) -> str:
    return f"{WAITER_PREFIX}{execution}"


def _waiter_value(waiter: Waiter) -> dict:
    value = {"task_token": {"S": waiter.task_token}, "since": {"N": str(waiter.since)}}
    return {"M": value | ({"repo": {"S": waiter.repo}} if waiter.repo is not None else {})}


def wait_for_release(table: str, key: str, execution: str, repo: str, task_token: str) -> bool:
    """Put this execution's task token in the lock's item, to be woken when the lock is released; raise LockFree
    if it is free already (released, expired or ours since the last attempt): then there is nothing to wait for.
    Return False if the item has no room left for another waiter (some 190 task tokens of 2 KB fill DynamoDB's
    400 KB): that one waits out its backoff unannounced, as before wake-ups."""
    now = time.time()
    try:
        client("dynamodb").update_item(
            TableName=table,
            Key={"lock_key": {"S": key}},
            UpdateExpression="SET #waiter = :waiter",
            ConditionExpression="attribute_exists(holder) AND expires_at >= :now AND holder <> :me",
            ExpressionAttributeNames={"#waiter": waiter_attribute(execution)},
            ExpressionAttributeValues={
                ":waiter": _waiter_value(Waiter(execution, task_token, now, repo)), ":now": {"N": str(int(now))},
                ":me": {"S": execution},
            },
        )
    except ClientError as error:
        code, message = error.response["Error"]["Code"], error.response["Error"].get("Message", "")
        if code == "ValidationException" and "size" in message:
            return False
        if code != "ConditionalCheckFailedException":
            raise
        raise LockFree(f"the lock {key} was released before execution {execution} could wait for it") from None
    return True


def waiters_in(image: Mapping[str, dict]) -> list[Waiter]:
    """The waiters a lock item (DynamoDB JSON, as its stream record's image) holds, longest waiting first."""
    waiters = [
        Waiter(name.removeprefix(WAITER_PREFIX), value["M"]["task_token"]["S"], float(value["M"]["since"]["N"]),
               value["M"].get("repo", {}).get("S"))
        for name, value in image.items() if name.startswith(WAITER_PREFIX)
    ]
    return sorted(waiters, key=lambda waiter: (waiter.since, waiter.execution))


def send_success(task_token: str, output: dict) -> bool:
    """Complete a waiting task; return False if it no longer waits (timed out, or its execution ended)."""
    try:
        client("stepfunctions").send_task_success(taskToken=task_token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE_WAITER_ERRORS:
            return False
        raise
    return True


def wake_next(table: str, key: str, waiters: list[Waiter]) -> Waiter | None:
    """Wake the longest-waiting of `waiters` whose task still waits, and put the ones behind it back in the lock's
    item, to be woken at the next release; return the one woken (None if none still waited)."""
    for index, waiter in enumerate(waiters):
        if send_success(waiter.task_token, {"lock": key, "woken": waiter.execution}):
            _requeue(table, key, waiters[index + 1:])
            return waiter
    return None


def _requeue(table: str, key: str, waiters: list[Waiter]) -> None:
    if not waiters:
        return
    client("dynamodb").update_item(
        TableName=table,
        Key={"lock_key": {"S": key}},
        # Whoever holds the lock by now keeps it; an item of waiters alone is free, and TTL may remove it once
        # nobody is left to take it (its removal wakes the first of them again).
        UpdateExpression="SET " + ", ".join(f"#w{index} = :w{index}" for index in range(len(waiters)))
        + ", expires_at = if_not_exists(expires_at, :now)",
        ExpressionAttributeNames={f"#w{index}": waiter_attribute(waiter.execution)
                                  for index, waiter in enumerate(waiters)},
        ExpressionAttributeValues={
            **{f":w{index}": _waiter_value(waiter) for index, waiter in enumerate(waiters)},
            ":now": {"N": str(int(time.time()))},
        },
    )
