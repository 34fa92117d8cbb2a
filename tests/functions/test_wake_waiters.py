"""The waker: given the lock table's stream records of removed items, it wakes the longest-waiting execution,
delivers what a ship told the deferred executions it carried, and with nobody waiting wakes a deferred one."""

import pytest

from functions.shared.aws import client
from functions.shared.deferred_ships import deferred_in, defer, read_deferred, ships_key, tell_carried, told_in
from functions.shared.execution_state import RunScope, ShipOutcome
from functions.shared.locking import acquire, release, wait_for_release, waiters_in
from functions.wake_waiters import app
from local_mode.streams import lambda_record, streams_client

TABLE = "locks"


@pytest.fixture
def stream(aws, monkeypatch):
    """The lock table with its stream, and a reader of what the stream recorded since."""
    monkeypatch.setenv("LOCK_TABLE", TABLE)
    description = client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
    )["TableDescription"]
    arn = description["LatestStreamArn"]
    streams = streams_client()
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    position = {"iterator": streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                       ShardIteratorType="LATEST")["ShardIterator"]}

    def removals() -> dict:
        answer = streams.get_records(ShardIterator=position["iterator"])
        position["iterator"] = answer["NextShardIterator"]
        return {"Records": [lambda_record(record, arn) for record in answer["Records"]
                            if record["eventName"] == "REMOVE"]}

    return removals


def test_a_release_wakes_the_first_waiter_and_keeps_the_others_waiting(stream, lambda_context):
    acquire(TABLE, "ws/dep", "exec-a", 600, 900)
    wait_for_release(TABLE, "ws/dep", "exec-b", "repo-b", "token-b")
    wait_for_release(TABLE, "ws/dep", "exec-c", "repo-c", "token-c")
    release(TABLE, "ws/dep", "exec-a")

    assert app.handler(stream(), lambda_context) == {"woken": {"ws/dep": "exec-b"}}
    item = client("dynamodb").get_item(TableName=TABLE, Key={"lock_key": {"S": "ws/dep"}})["Item"]
    assert [waiter.execution for waiter in waiters_in(item)] == ["exec-c"]


def test_a_lock_nobody_waited_for_wakes_nobody(stream, lambda_context):
    acquire(TABLE, "ws/dep", "exec-a", 600, 900)
    release(TABLE, "ws/dep", "exec-a")
    assert app.handler(stream(), lambda_context) == {"woken": {}}
    assert "Item" not in client("dynamodb").get_item(TableName=TABLE, Key={"lock_key": {"S": "ws/dep"}})


def deferred(execution: str, repo: str) -> None:
    acquire(TABLE, "ws/dep", execution, 600, 900)
    defer(TABLE, "ws/dep", RunScope(workspace="ws", deployment="dep", repo=repo, execution=execution),
          f"token-{execution}")


def test_a_release_delivers_what_a_ship_told_the_executions_it_carried(stream, lambda_context):
    deferred("exec-a", "repo-a")
    stream()
    acquire(TABLE, "ws/dep", "exec-b", 600, 900)
    tell_carried(TABLE, "ws/dep", read_deferred(TABLE, "ws/dep"),
                 ShipOutcome(shipped=True, reason="carried", shipped_by="exec-b", version="v1"))
    release(TABLE, "ws/dep", "exec-b")

    # Nobody waits and nothing stays deferred: the outcome is sent, and forgotten.
    assert app.handler(stream(), lambda_context) == {"woken": {}}
    ships = client("dynamodb").get_item(TableName=TABLE, Key={"lock_key": {"S": ships_key("ws/dep")}})["Item"]
    assert told_in(ships) == [] and deferred_in(ships) == []


def test_with_nobody_waiting_the_longest_deferred_execution_is_woken_to_ship(stream, lambda_context):
    deferred("exec-a", "repo-a")
    deferred("exec-b", "repo-b")
    # The lock was released each time with a deferral: the waker woke exec-a, then exec-a again (first deferred).
    assert app.handler(stream(), lambda_context) == {"woken": {"ws/dep": "exec-a"}}
    # Both stay deferred: exec-a's ship carries exec-b's change.
    assert [entry.execution for entry in read_deferred(TABLE, "ws/dep")] == ["exec-a", "exec-b"]


def test_a_waiter_is_woken_before_any_deferred_execution(stream, lambda_context):
    deferred("exec-a", "repo-a")
    stream()
    acquire(TABLE, "ws/dep", "exec-b", 600, 900)
    wait_for_release(TABLE, "ws/dep", "exec-c", "repo-c", "token-c")
    defer(TABLE, "ws/dep", RunScope(workspace="ws", deployment="dep", repo="repo-b", execution="exec-b"), "token-b")

    assert app.handler(stream(), lambda_context) == {"woken": {"ws/dep": "exec-c"}}
