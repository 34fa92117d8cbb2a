"""The local mode's model of Lambda polling a DynamoDB stream (local_mode/streams.py).

AWS: an event source mapping reads the stream from its starting position, passes the records its filters match
(an EventBridge-style pattern on the record), and invokes the function with `{"Records": [...]}` in batches, each
record naming its stream (`eventSourceARN`) and its creation time in epoch seconds; a batch that fails is retried
as often as the mapping says, then dropped.
"""

import time

import pytest

from functions.shared.aws import client
from local_mode.streams import StreamMapping, StreamPollers, streams_client

MAPPING = {
    "FunctionName": "waker",
    "EventSourceArn": "",
    "StartingPosition": "LATEST",
    "BatchSize": 2,
    "MaximumRetryAttempts": 1,
    "FilterCriteria": {"Filters": [{"Pattern": '{"eventName":["REMOVE"]}'}]},
}


@pytest.fixture
def table(aws):
    dynamodb = client("dynamodb")
    stream_arn = dynamodb.create_table(
        TableName="locks", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    return dynamodb, stream_arn


def poll(stream_arn: str, invoke) -> StreamPollers:
    mapping = StreamMapping.from_properties({**MAPPING, "EventSourceArn": stream_arn})
    pollers = StreamPollers(streams_client(), invoke, [mapping])
    pollers.start()
    return pollers


def until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the poller did not deliver in time"
        time.sleep(0.05)


def test_only_records_the_filters_pass_from_the_start_position_in_batches(table):
    dynamodb, stream_arn = table
    dynamodb.put_item(TableName="locks", Item={"lock_key": {"S": "before"}})
    dynamodb.delete_item(TableName="locks", Key={"lock_key": {"S": "before"}})  # before LATEST: never delivered
    events = []
    pollers = poll(stream_arn, lambda function, event: events.append((function, event)))
    try:
        for key in ("a", "b", "c"):
            dynamodb.put_item(TableName="locks", Item={"lock_key": {"S": key}, "holder": {"S": f"exec-{key}"}})
        for key in ("a", "b", "c"):
            dynamodb.delete_item(TableName="locks", Key={"lock_key": {"S": key}})
        until(lambda: sum(len(event["Records"]) for _, event in events) == 3)
    finally:
        pollers.stop()

    records = [record for _, event in events for record in event["Records"]]
    assert {function for function, _ in events} == {"waker"}
    assert all(len(event["Records"]) <= 2 for _, event in events)
    assert [record["dynamodb"]["OldImage"]["lock_key"]["S"] for record in records] == ["a", "b", "c"]
    assert all(record["eventName"] == "REMOVE" and record["eventSourceARN"] == stream_arn for record in records)
    assert all(isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int) for record in records)


def test_a_failing_batch_is_retried_as_the_mapping_says_then_dropped(table):
    dynamodb, stream_arn = table
    calls = []

    def failing(function, event):
        calls.append(event)
        raise RuntimeError("the function failed")

    pollers = poll(stream_arn, failing)
    try:
        dynamodb.put_item(TableName="locks", Item={"lock_key": {"S": "a"}})
        dynamodb.delete_item(TableName="locks", Key={"lock_key": {"S": "a"}})
        until(lambda: pollers.dropped)
    finally:
        pollers.stop()
    assert len(calls) == 2  # the first attempt and its one retry
    assert pollers.dropped == [calls[0]]


def test_while_duplicating_each_batch_comes_twice(table):
    # AWS: Lambda reads a stream at least once: a batch whose invocation timed out after its work comes again.
    dynamodb, stream_arn = table
    events = []
    pollers = poll(stream_arn, lambda function, event: events.append(event))
    pollers.duplicating = True
    try:
        dynamodb.put_item(TableName="locks", Item={"lock_key": {"S": "a"}})
        dynamodb.delete_item(TableName="locks", Key={"lock_key": {"S": "a"}})
        until(lambda: len(events) == 2)
    finally:
        pollers.stop()
    assert events[0] == events[1] and len(events[0]["Records"]) == 1
