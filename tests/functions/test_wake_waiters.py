"""The waker: given the lock table's stream records of removed items, it wakes the longest-waiting execution."""

import pytest

from functions.shared.aws import client
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
    wait_for_release(TABLE, "ws/dep", "exec-b", "token-b")
    wait_for_release(TABLE, "ws/dep", "exec-c", "token-c")
    release(TABLE, "ws/dep", "exec-a")

    assert app.handler(stream(), lambda_context) == {"woken": {"ws/dep": "exec-b"}}
    item = client("dynamodb").get_item(TableName=TABLE, Key={"lock_key": {"S": "ws/dep"}})["Item"]
    assert [waiter.execution for waiter in waiters_in(item)] == ["exec-c"]


def test_a_lock_nobody_waited_for_wakes_nobody(stream, lambda_context):
    acquire(TABLE, "ws/dep", "exec-a", 600, 900)
    release(TABLE, "ws/dep", "exec-a")
    assert app.handler(stream(), lambda_context) == {"woken": {}}
    assert "Item" not in client("dynamodb").get_item(TableName=TABLE, Key={"lock_key": {"S": "ws/dep"}})
