"""Deferred ships: who defers, the transaction that defers, what a ship tells those it carried, and what a failed
ship leaves them."""

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from functions.acquire_lock import app
from functions.shared import aws as step_aws
from functions.shared.aws import client
from functions.shared.deferred_ships import (
    decide, defer, deferred_in, has_deferred_change, note_failed_ship, read_deferred, ships_key, tell_carried, told_in,
    withdraw,
)
from functions.shared.errors import LockLost
from functions.shared.execution_state import RunScope, ShipOutcome
from functions.shared.locking import acquire, current_holder, wait_for_release
from local_mode.dynamodb_writes import atomic_item_writes

KEY = "ws/dep"
TRANSACTION_SECONDS = 0.3


def scope(execution: str, repo: str, bundle: str = "main") -> RunScope:
    return RunScope(workspace="ws", deployment="dep", repo=repo, execution=execution, bundle=bundle)


def ships_item(table: str) -> dict:
    return client("dynamodb").get_item(TableName=table, Key={"lock_key": {"S": ships_key(KEY)}}).get("Item", {})


def deferred_by(table: str, execution: str, repo: str) -> None:
    acquire(table, KEY, execution, 600, 900)
    defer(table, KEY, scope(execution, repo), f"token-{execution}")


def test_a_holder_defers_only_to_executions_of_other_repos_on_the_main_bundle():
    assert not decide(scope("a", "repo-a"), KEY, {}).defer
    same_repo = decide(scope("a", "repo-a"), KEY, {"b": "repo-a"})
    assert not same_repo.defer and "no execution of another repo" in same_repo.reason
    per_repo = decide(scope("a", "repo-a", bundle="repo-a"), KEY, {"b": "repo-b"})
    assert not per_repo.defer and "holds repo repo-a alone" in per_repo.reason

    decision = decide(scope("a", "repo-a"), KEY, {"c": "repo-c", "b": "repo-a", "old": None})
    # A waiter recorded before waiters named their repo counts as another repo's.
    assert decision.defer and decision.waiting == ["c", "old"]
    assert decision.reason.startswith("2 executions of other repos wait for the lock ws/dep")


def test_deferring_releases_the_lock_and_records_the_change_in_one_transaction(lock_table):
    acquire(lock_table, KEY, "exec-a", 600, 900)
    defer(lock_table, KEY, scope("exec-a", "repo-a"), "token-a")

    assert current_holder(lock_table, KEY) is None
    [entry] = read_deferred(lock_table, KEY)
    assert (entry.execution, entry.repo, entry.task_token, entry.failed_ships) == ("exec-a", "repo-a", "token-a", ())


def test_an_execution_that_lost_the_lock_defers_nothing(lock_table):
    acquire(lock_table, KEY, "exec-b", 600, 900)
    with pytest.raises(LockLost, match="execution exec-a no longer holds the lock ws/dep"):
        defer(lock_table, KEY, scope("exec-a", "repo-a"), "token-a")
    assert current_holder(lock_table, KEY) == "exec-b" and read_deferred(lock_table, KEY) == []


def test_a_deferred_change_to_a_repo_is_found_by_another_execution_of_that_repo_only(lock_table):
    deferred_by(lock_table, "exec-a", "repo-a")
    assert has_deferred_change(lock_table, KEY, scope("exec-b", "repo-a"))
    assert not has_deferred_change(lock_table, KEY, scope("exec-a", "repo-a"))
    assert not has_deferred_change(lock_table, KEY, scope("exec-b", "repo-b"))


def test_a_per_repo_bundle_reads_no_deferred_change(lock_table):
    deferred_by(lock_table, "exec-a", "repo-a")
    reads = []
    client("dynamodb").meta.events.register("provide-client-params.dynamodb.GetItem",
                                            lambda params, **_: reads.append(params["Key"]))
    assert not has_deferred_change(lock_table, KEY, scope("exec-b", "repo-a", bundle="repo-a"))
    assert reads == []
    assert has_deferred_change(lock_table, KEY, scope("exec-b", "repo-a")) and len(reads) == 1


def test_a_ship_tells_each_execution_it_carried_and_they_are_deferred_no_more(lock_table):
    deferred_by(lock_table, "exec-a", "repo-a")
    deferred_by(lock_table, "exec-b", "repo-b")
    deferred_by(lock_table, "exec-c", "repo-c")
    carried = read_deferred(lock_table, KEY)
    note_failed_ship(lock_table, KEY, carried[:1], "exec-x")
    carried = read_deferred(lock_table, KEY)
    outcome = ShipOutcome(shipped=True, reason="carried by the ship of execution exec-c", shipped_by="exec-c",
                          deployment_id="dep-id", bundle="main", version="v7")

    # exec-c deferred, was told to ship itself, and shipped: its own entry goes, untold.
    tell_carried(lock_table, KEY, carried, outcome)

    item = ships_item(lock_table)
    assert deferred_in(item) == []
    told = {entry.execution: json.loads(entry.outcome) for entry in told_in(item)}
    assert set(told) == {"exec-a", "exec-b"}
    assert told["exec-b"] == {**outcome.to_json(), "failed_ships": []}
    assert told["exec-a"]["failed_ships"] == ["exec-x"] and told["exec-a"]["version"] == "v7"
    assert {entry.task_token for entry in told_in(item)} == {"token-exec-a", "token-exec-b"}


def test_a_failed_ship_leaves_the_changes_deferred_naming_each_failed_ship(lock_table):
    deferred_by(lock_table, "exec-a", "repo-a")
    deferred_by(lock_table, "exec-b", "repo-b")
    note_failed_ship(lock_table, KEY, read_deferred(lock_table, KEY), "exec-x")
    note_failed_ship(lock_table, KEY, read_deferred(lock_table, KEY), "exec-b")
    # Another attempt of exec-b's ship (AstroUnavailable is retried) failing too.
    note_failed_ship(lock_table, KEY, read_deferred(lock_table, KEY), "exec-b")

    assert {entry.execution: entry.failed_ships for entry in read_deferred(lock_table, KEY)} == {
        # exec-b's own failed ship is its own failure, not news to it.
        "exec-a": ("exec-x", "exec-b"), "exec-b": ("exec-x",),
    }


def test_a_ship_that_succeeded_on_a_retry_is_not_among_the_failed_ships_it_tells(lock_table):
    deferred_by(lock_table, "exec-a", "repo-a")
    note_failed_ship(lock_table, KEY, read_deferred(lock_table, KEY), "exec-x")
    note_failed_ship(lock_table, KEY, read_deferred(lock_table, KEY), "exec-b")

    tell_carried(lock_table, KEY, read_deferred(lock_table, KEY),
                 ShipOutcome(shipped=True, reason="carried", shipped_by="exec-b", version="v2"))

    [told] = told_in(ships_item(lock_table))
    assert json.loads(told.outcome)["failed_ships"] == ["exec-x"]


def test_a_change_rolled_back_is_withdrawn_and_no_later_ship_carries_it(lock_table):
    # exec-a deferred, was woken to ship itself, and its ship failed: Rollback restored repo-a.
    deferred_by(lock_table, "exec-a", "repo-a")
    deferred_by(lock_table, "exec-b", "repo-b")

    withdraw(lock_table, KEY, "exec-a")
    withdraw(lock_table, KEY, "exec-c")  # never deferred: nothing to withdraw, nothing written

    assert [entry.execution for entry in read_deferred(lock_table, KEY)] == ["exec-b"]
    assert not has_deferred_change(lock_table, KEY, scope("exec-d", "repo-a"))
    withdraw(lock_table, "ws/other", "exec-a")
    assert client("dynamodb").get_item(TableName=lock_table, Key={"lock_key": {"S": ships_key("ws/other")}}).get(
        "Item") is None


def test_the_lock_function_decides_then_defers(lock_table, monkeypatch, lambda_context):
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-a", "execution": "exec-a", "lock_key": KEY}
    acquire(lock_table, KEY, "exec-a", 600, 900)
    assert app.handler({"action": "ship_or_defer", "state": state}, lambda_context)["defer"] is False
    wait_for_release(lock_table, KEY, "exec-b", "repo-b", "token-b")

    decision = app.handler({"action": "ship_or_defer", "state": state}, lambda_context)
    assert decision["defer"] is True and decision["waiting"] == ["exec-b"]
    assert app.handler({"action": "defer", "state": state, "task_token": "token-a"}, lambda_context) is None
    assert current_holder(lock_table, KEY) is None
    assert [entry.execution for entry in read_deferred(lock_table, KEY)] == ["exec-a"]


def test_taking_the_lock_says_whether_a_deferred_change_to_the_repo_ships_first(lock_table, monkeypatch,
                                                                                 lambda_context):
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    monkeypatch.setenv("LOCK_LEASE_SECONDS", "600")
    monkeypatch.setenv("LOCK_MAX_WAIT_SECONDS", "900")
    deferred_by(lock_table, "exec-a", "repo-a")
    state = {"workspace": "ws", "deployment": "dep", "execution": "exec-b", "lock_key": KEY}

    assert app.handler({**state, "repo": "repo-a"}, lambda_context)["flush_first"] is True
    client("dynamodb").delete_item(TableName=lock_table, Key={"lock_key": {"S": KEY}})
    assert app.handler({**state, "repo": "repo-b"}, lambda_context)["flush_first"] is False


def test_a_deferred_execution_back_for_the_lock_starts_a_wait_of_its_own(lock_table):
    held = acquire(lock_table, KEY, "exec-a", 600, 900)
    defer(lock_table, KEY, scope("exec-a", "repo-a"), "token-a")
    acquire(lock_table, KEY, "exec-b", 600, 900)

    again = acquire(lock_table, KEY, "exec-a", 600, 900, previous=held)
    assert not again.acquired and again.attempt == 1 and again.waiting_since > held.waiting_since


@pytest.fixture
def ongoing_transactions(aws):
    """DynamoDB's transactions as they take time: the writes they conflict with are refused meanwhile."""
    with atomic_item_writes(transaction_seconds=TRANSACTION_SECONDS):
        yield


def hold_the_ships_item(table: str) -> threading.Thread:
    """Another transaction including the deployment's ships item, ongoing for TRANSACTION_SECONDS from now."""
    holder = threading.Thread(target=client("dynamodb").transact_write_items, kwargs={"TransactItems": [
        {"Update": {"TableName": table, "Key": {"lock_key": {"S": ships_key(KEY)}},
                    "UpdateExpression": "SET touched = :yes", "ExpressionAttributeValues": {":yes": {"BOOL": True}}}},
    ]})
    holder.start()
    time.sleep(0.05)
    return holder


def test_a_deferral_that_meets_another_transaction_is_tried_again_not_taken_for_a_lost_lock(
        lock_table, ongoing_transactions):
    acquire(lock_table, KEY, "exec-a", 600, 900)
    holder = hold_the_ships_item(lock_table)
    defer(lock_table, KEY, scope("exec-a", "repo-a"), "token-a")
    holder.join()

    assert current_holder(lock_table, KEY) is None
    assert [entry.execution for entry in read_deferred(lock_table, KEY)] == ["exec-a"]


def test_a_conflict_that_outlasts_the_retries_fails_the_request_and_changes_nothing(
        lock_table, ongoing_transactions, monkeypatch):
    monkeypatch.setattr(step_aws, "CONFLICT_ATTEMPTS", 1)
    acquire(lock_table, KEY, "exec-a", 600, 900)
    holder = hold_the_ships_item(lock_table)
    with pytest.raises(ClientError) as raised:
        defer(lock_table, KEY, scope("exec-a", "repo-a"), "token-a")
    holder.join()

    assert not isinstance(raised.value, LockLost)
    assert [reason["Code"] for reason in raised.value.response["CancellationReasons"]] == ["None", "TransactionConflict"]
    assert current_holder(lock_table, KEY) == "exec-a" and read_deferred(lock_table, KEY) == []
