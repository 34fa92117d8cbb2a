"""The ship slot: a ship of a deployment's main Dag bundle holds it, instead of the lock, while the astro CLI uploads.

The lock covers what must not interleave: a repo prefix changing, and a bundle being gathered. Once Deploy has
gathered, it hands the lock over to the deployment's ship slot (`shipping#<lock key>`) in one transaction, and
the CLI uploads while other executions take the lock and change their repos. The slot keeps what the lock kept:
- ships stay strictly ordered: a holder of the lock gathers only when no slot is held (Deploy raises ShipInFlight,
  and the execution defers its ship), and nobody but the holder of the lock takes the slot;
- a restore point is what Astro last received: an execution whose repo the ship in flight carries (its change, or
  a deferred one) does not change it until the ship has ended (AcquireLock makes it wait for the slot: its waiters
  are woken when the slot's item goes, as the lock's are);
- a failed ship is rolled back before anyone gathers again: the slot is ended by Rollback, after the restore.

The slot is a lease like the lock's (`holder`, `expires_at`): a holder that vanished is freed by the Sweeper once
its execution and recovery have ended, or by the lease's end.
"""

import time

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.errors import LockLost, ShipInFlight
from functions.shared.locking import keep, lease_holder, lock_item, release
from functions.shared.records import FrozenRecord

SLOT_KEY_PREFIX = "shipping#"


class ShipSlot(FrozenRecord):
    """A ship in flight: whose, and which repos it carries a change of (the holder's, and deferred ones)."""

    holder: str
    repos: tuple[str, ...]
    expires_at: int


def slot_key(lock_key: str) -> str:
    return f"{SLOT_KEY_PREFIX}{lock_key}"


def lock_key_of_slot(key: str) -> str | None:
    """The lock key a slot's key belongs to; None for any other item of the lock table."""
    return key.removeprefix(SLOT_KEY_PREFIX) if key.startswith(SLOT_KEY_PREFIX) else None


def _key(lock_key: str) -> dict:
    return {"lock_key": {"S": slot_key(lock_key)}}


def ship_in_flight(table: str, lock_key: str) -> ShipSlot | None:
    """The deployment's ship in flight, if one holds the slot (its lease not run out)."""
    item = lock_item(table, slot_key(lock_key))
    holder = lease_holder(item)
    if holder is None:
        return None
    return ShipSlot(holder=holder, repos=tuple(entry["S"] for entry in item.get("repos", {}).get("L", [])),
                    expires_at=int(item["expires_at"]["N"]))


def hand_over(table: str, lock_key: str, execution: str, repos: list[str], lease_seconds: int) -> None:
    """Release the lock and take the slot, in one transaction: LockLost if the execution no longer holds the lock,
    ShipInFlight if another ship holds the slot (its holder can only have taken it before this one took the lock)."""
    now = int(time.time())
    try:
        client("dynamodb").transact_write_items(TransactItems=[
            {"Delete": {"TableName": table, "Key": {"lock_key": {"S": lock_key}},
                        "ConditionExpression": "holder = :me",
                        "ExpressionAttributeValues": {":me": {"S": execution}}}},
            # An update, not a put: executions waiting for the previous ship to end may already be in the item.
            {"Update": {"TableName": table, "Key": _key(lock_key),
                        "UpdateExpression": "SET holder = :me, repos = :repos, acquired_at = :now, expires_at = :until",
                        "ConditionExpression": "attribute_not_exists(holder) OR expires_at < :now OR holder = :me",
                        "ExpressionAttributeValues": {
                            ":me": {"S": execution}, ":repos": {"L": [{"S": repo} for repo in sorted(set(repos))]},
                            ":now": {"N": str(now)}, ":until": {"N": str(now + lease_seconds)},
                        }}},
        ])
    except ClientError as error:
        reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        if reasons[:1] == ["ConditionalCheckFailed"]:
            raise LockLost(f"execution {execution} no longer holds the lock {lock_key}: its bundle was not shipped"
                           ) from None
        if reasons[1:2] == ["ConditionalCheckFailed"]:
            raise ShipInFlight(f"another ship of {lock_key} holds its ship slot") from None
        raise


def keep_slot(table: str, lock_key: str, execution: str, lease_seconds: int) -> bool:
    """Renew the slot's lease if `execution` still holds it; return whether it does (recovery's fence)."""
    return keep(table, slot_key(lock_key), execution, lease_seconds)


def end_ship(table: str, lock_key: str, execution: str) -> bool:
    """End the execution's ship: delete the slot if it holds it (its removal wakes the executions waiting for it);
    return whether it did."""
    return release(table, slot_key(lock_key), execution)
