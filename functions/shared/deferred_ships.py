"""Deferred ships: in a burst, one ship of a deployment's main Dag bundle carries every repo that changed.

A DAG-only deploy of the main bundle ships every repo prefix of the deployment, so an execution that has changed
its repo need not ship while other executions wait to change theirs: the ship of whoever changes the deployment
last carries them all. So a holder that has uploaded and finds an execution of another repo waiting for the lock,
or a ship in flight (functions/shared/ship_slot.py), defers: in one transaction it releases the lock and records
itself in the deployment's ships item (`deferred:<execution>`, with the token of the callback task it then sleeps
in).

Whoever ships (Deploy, gathering under the lock) carries every execution deferred when it gathered. Once Astro
accepted the ship it removes them and leaves each its outcome (`told:<execution>`: its token and the version that
carries it); the waker (functions/wake_waiters), at the ship's end or the lock's release, sends each its outcome. A failed ship keeps them, noting
which ship failed: whichever ships next carries them, and the execution whose change a failed ship carried is told
so when it is carried, or ships itself; a change rolled back is withdrawn. When the lock is free, nobody waits for
it and no ship is in flight, the waker wakes the longest-deferred execution to ship itself (carrying the others): a
change is never left waiting for a ship nobody will make. A deferred execution whose wait runs out takes the lock
again and ships itself.

Ships stay strictly ordered (each gathers under the lock while no other ship is in flight), and a restore point is
always what Astro last received of its repo: a push to a repo with a deferred change ships that change first
(AcquireLock's `flush_first`), after the ship in flight, if any, has ended.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import replace

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.errors import LockLost
from functions.shared.execution_state import RunScope, ShipDecision, ShipOutcome
from functions.shared.records import FrozenRecord

# The lock function's actions (its payload's "action": cdk/state_machine.py).
SHIP_OR_DEFER, DEFER = "ship_or_defer", "defer"
SHIPS_KEY_PREFIX = "ships#"
DEFERRED_PREFIX = "deferred:"
TOLD_PREFIX = "told:"
WAITING_LISTED = 20


class Deferred(FrozenRecord):
    """An execution whose change waits in S3 for a ship to carry it."""

    execution: str
    repo: str
    task_token: str
    since: float
    failed_ships: tuple[str, ...] = ()  # the ships that carried it and failed


def ships_key(lock_key: str) -> str:
    return f"{SHIPS_KEY_PREFIX}{lock_key}"


def _key(lock_key: str) -> dict:
    return {"lock_key": {"S": ships_key(lock_key)}}


def deferred_in(image: Mapping[str, dict]) -> list[Deferred]:
    """The deferred executions a ships item (DynamoDB JSON) holds, longest deferred first."""
    deferred = [
        Deferred(
            execution=name.removeprefix(DEFERRED_PREFIX), repo=value["M"]["repo"]["S"],
            task_token=value["M"]["task_token"]["S"], since=float(value["M"]["since"]["N"]),
            failed_ships=tuple(entry["S"] for entry in value["M"].get("failed_ships", {}).get("L", [])),
        )
        for name, value in image.items() if name.startswith(DEFERRED_PREFIX)
    ]
    return sorted(deferred, key=lambda entry: (entry.since, entry.execution))


def ships_item(table: str, lock_key: str) -> dict:
    """The deployment's ships item as it is now (DynamoDB JSON; empty if there is none)."""
    return client("dynamodb").get_item(TableName=table, Key=_key(lock_key), ConsistentRead=True).get("Item", {})


def read_deferred(table: str, lock_key: str) -> list[Deferred]:
    return deferred_in(ships_item(table, lock_key))


def coalesces(scope: RunScope) -> bool:
    """Whether the execution's ship may carry others' changes, or theirs its: only the main bundle holds every repo."""
    return scope.bundle == MAIN_BUNDLE


def has_deferred_change(table: str, lock_key: str, scope: RunScope) -> bool:
    """Whether another execution's change to the scope's repo waits unshipped: it must ship before the repo changes
    again. A per-repo bundle never has one (nothing is read)."""
    return coalesces(scope) and any(entry.repo == scope.repo and entry.execution != scope.execution
                                    for entry in read_deferred(table, lock_key))


def decide(scope: RunScope, lock_key: str, waiting: Mapping[str, str | None], ship_in_flight: str | None = None
           ) -> ShipDecision:
    """Defer the ship when another execution's ship is in flight (the next ship carries this change), or when
    executions of other repos wait for the lock (execution -> repo): theirs will carry it. A per-repo bundle ships
    its repo alone, and an execution of the same repo would ship this change first."""
    others = sorted(execution for execution, repo in waiting.items() if repo != scope.repo)
    if not coalesces(scope):
        return ShipDecision(defer=False, reason=f"Dag bundle {scope.bundle} holds repo {scope.repo} alone")
    if ship_in_flight and ship_in_flight != scope.execution:
        return ShipDecision(
            defer=True, waiting=others[:WAITING_LISTED],
            reason=f"the ship of execution {ship_in_flight} is uploading: the next ship, once it has ended, carries "
                   "this change",
        )
    if not others:
        return ShipDecision(defer=False, reason=f"no execution of another repo waits for the lock {lock_key}")
    listed = others[:WAITING_LISTED]
    return ShipDecision(
        defer=True, waiting=listed,
        reason=f"{len(others)} executions of other repos wait for the lock {lock_key}: the last to change the "
               "deployment ships every repo",
    )


def defer(table: str, lock_key: str, scope: RunScope, task_token: str) -> None:
    """Release the lock and record the execution as deferred, in one transaction; LockLost if it no longer holds
    the lock (its lease ran out and another execution took it)."""
    entry = {"M": {"repo": {"S": scope.repo}, "task_token": {"S": task_token}, "since": {"N": str(time.time())}}}
    try:
        client("dynamodb").transact_write_items(TransactItems=[
            {"Delete": {"TableName": table, "Key": {"lock_key": {"S": lock_key}},
                        "ConditionExpression": "holder = :me",
                        "ExpressionAttributeValues": {":me": {"S": scope.execution}}}},
            {"Update": {"TableName": table, "Key": _key(lock_key), "UpdateExpression": "SET #deferred = :entry",
                        "ExpressionAttributeNames": {"#deferred": f"{DEFERRED_PREFIX}{scope.execution}"},
                        "ExpressionAttributeValues": {":entry": entry}}},
        ])
    except ClientError as error:
        # The lock item's condition failed: another holder. Any other cancellation (a transaction conflict that
        # outlasted the client's retries) is the request's failure, not a lost lock.
        reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
        lock_condition_failed = reasons[:1] == ["ConditionalCheckFailed"]
        if error.response["Error"]["Code"] != "TransactionCanceledException" or not lock_condition_failed:
            raise
        raise LockLost(
            f"execution {scope.execution} no longer holds the lock {lock_key}: its change was not deferred"
        ) from None


def withdraw(table: str, lock_key: str, execution: str) -> None:
    """The execution's change was rolled back: it waits for no ship any more, and no later ship may record it as
    live. (A deferred execution woken to ship itself keeps its entry until its ship carries it.)"""
    try:
        client("dynamodb").update_item(
            TableName=table, Key=_key(lock_key), UpdateExpression="REMOVE #deferred",
            # Without an entry, no item is made.
            ConditionExpression="attribute_exists(#deferred)",
            ExpressionAttributeNames={"#deferred": f"{DEFERRED_PREFIX}{execution}"},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def _names(executions: list[str], prefix: str, tag: str = "e") -> dict[str, str]:
    """Expression attribute names (#<tag><index>) of the executions' entries."""
    return {f"#{tag}{index}": f"{prefix}{execution}" for index, execution in enumerate(executions)}


def tell_carried(table: str, lock_key: str, carried: list[Deferred], outcome: ShipOutcome) -> None:
    """The ship of `outcome.shipped_by`, which Astro accepted, carried `carried`: they are deferred no more, and
    each is left its outcome (which names any failed ship that carried it before) for the waker to send at the
    lock's release."""
    if not carried:
        return
    shipper = outcome.shipped_by
    # The shipper's own entry (it deferred, then shipped itself) goes too; it is told nothing.
    entries = [entry for entry in carried if entry.execution != shipper]
    told = _names([entry.execution for entry in entries], TOLD_PREFIX)
    deferred = _names([entry.execution for entry in carried], DEFERRED_PREFIX, tag="d")
    # A failed attempt of this very ship (retried) is no failed ship of the change.
    values = {
        f":t{index}": {"M": {"task_token": {"S": entry.task_token}, "outcome": {"S": json.dumps(
            replace(outcome, failed_ships=[ship for ship in entry.failed_ships if ship != shipper]).to_json())}}}
        for index, entry in enumerate(entries)
    }
    sets = ", ".join(f"#e{index} = :t{index}" for index in range(len(entries)))
    client("dynamodb").update_item(
        TableName=table, Key=_key(lock_key),
        UpdateExpression=(f"SET {sets} " if sets else "") + "REMOVE " + ", ".join(deferred),
        ExpressionAttributeNames={**told, **deferred},
        **({"ExpressionAttributeValues": values} if values else {}),
    )


def note_failed_ship(table: str, lock_key: str, carried: list[Deferred], shipper: str) -> None:
    """A ship that carried `carried` failed: they stay deferred (the next ship carries them), knowing it did (once,
    however many of its attempts failed)."""
    entries = [entry for entry in carried if entry.execution != shipper and shipper not in entry.failed_ships]
    if not entries:
        return
    names = _names([entry.execution for entry in entries], DEFERRED_PREFIX)
    client("dynamodb").update_item(
        TableName=table, Key=_key(lock_key),
        UpdateExpression="SET " + ", ".join(
            f"#e{index}.failed_ships = list_append(if_not_exists(#e{index}.failed_ships, :none), :failed)"
            for index in range(len(entries))),
        # Only while they are still deferred: an entry that is gone must not come back as a fragment.
        ConditionExpression=" AND ".join(f"attribute_exists(#e{index})" for index in range(len(entries))),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":none": {"L": []}, ":failed": {"L": [{"S": shipper}]}},
    )


class Told(FrozenRecord):
    execution: str
    task_token: str
    outcome: str  # JSON: a ShipOutcome


def told_in(image: Mapping[str, dict]) -> list[Told]:
    return [
        Told(execution=name.removeprefix(TOLD_PREFIX), task_token=value["M"]["task_token"]["S"],
             outcome=value["M"]["outcome"]["S"])
        for name, value in image.items() if name.startswith(TOLD_PREFIX)
    ]


def forget_told(table: str, lock_key: str, told: list[Told]) -> None:
    if not told:
        return
    client("dynamodb").update_item(
        TableName=table, Key=_key(lock_key),
        UpdateExpression="REMOVE " + ", ".join(f"#e{index}" for index in range(len(told))),
        ExpressionAttributeNames=_names([entry.execution for entry in told], TOLD_PREFIX),
    )


def ship_yourself_outcome(lock_key: str, failed_ships: tuple[str, ...] = ()) -> ShipOutcome:
    """What the longest-deferred execution is told when nobody else is left to ship: to ship itself; and which
    failed ships carried its change."""
    failed = f" (the ships of {', '.join(failed_ships)} that carried its change failed)" if failed_ships else ""
    return ShipOutcome(
        shipped=False,
        reason=f"the lock {lock_key} was released and no execution waits for it: this execution ships the "
               f"deferred changes itself{failed}",
        failed_ships=list(failed_ships),
    )
