import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.utils import parse_timestamp

from functions.shared import aws as step_aws
from functions.shared.aws import (
    CONFLICT_ATTEMPTS, CONFLICT_BACKOFF_SECONDS, client, parse_response_timestamp, transaction_conflict_delay,
)
from local_mode.dynamodb_writes import atomic_item_writes
from testkit import DAG_BUCKET


@pytest.mark.parametrize("value", [
    "2026-12-07T06:11:55.000Z",  # S3's XML answers
    "2026-12-07T06:11:55Z",
    "2026-12-07T06:11:55.123456+02:00",
    "Mon, 07 Dec 2026 06:11:55 GMT",  # the Last-Modified header of GetObject and HeadObject
    1796796715,  # epoch seconds, as JSON answers carry them
    1796796715.25,
])
def test_timestamps_read_as_botocore_reads_them(value):
    parsed = parse_response_timestamp(value)
    assert parsed == parse_timestamp(value)
    assert parsed.utcoffset() is not None


def test_iso_timestamps_skip_dateutil(monkeypatch):
    def refuse(value):
        raise AssertionError(f"botocore's parser called for {value}")

    monkeypatch.setattr(step_aws, "parse_timestamp", refuse)
    assert parse_response_timestamp("2026-12-07T06:11:55.000Z") == datetime(2026, 12, 7, 6, 11, 55,
                                                                            tzinfo=timezone.utc)


def test_the_steps_clients_parse_timestamps_with_it(buckets, monkeypatch):
    """A listing's LastModified and a GetObject's Last-Modified header both go through the project's parser."""
    seen = []

    def spy(value):
        seen.append(value)
        return parse_response_timestamp(value)

    monkeypatch.setattr(step_aws, "parse_response_timestamp", spy)
    step_aws.forget_clients()
    s3 = client("s3")
    s3.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo/a.py", Body=b"x = 1\n")
    [listed] = s3.list_objects_v2(Bucket=DAG_BUCKET, Prefix="dags/")["Contents"]
    got = s3.get_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo/a.py")
    assert isinstance(listed["LastModified"], datetime) and listed["LastModified"].utcoffset() is not None
    assert listed["LastModified"] == got["LastModified"]
    assert len(seen) == 2


def conflict(code: str, reasons: tuple[str, ...] = ()) -> tuple[None, dict]:
    parsed = {"Error": {"Code": code}}
    return None, parsed | ({"CancellationReasons": [{"Code": reason} for reason in reasons]} if reasons else {})


def test_dynamodb_requests_refused_by_a_transaction_conflict_are_tried_again_with_a_growing_delay():
    retried = [
        conflict("TransactionConflictException"),
        conflict("TransactionCanceledException", ("None", "TransactionConflict")),
    ]
    for response in retried:
        delays = [transaction_conflict_delay(response, attempts) for attempts in range(1, CONFLICT_ATTEMPTS)]
        assert all(0 <= delay <= CONFLICT_BACKOFF_SECONDS * 2**attempts
                   for attempts, delay in enumerate(delays, start=1))
        assert transaction_conflict_delay(response, CONFLICT_ATTEMPTS) is None

    # A condition decides; anything else is not this handler's.
    for response in [conflict("TransactionCanceledException", ("ConditionalCheckFailed", "TransactionConflict")),
                     conflict("ConditionalCheckFailedException"), conflict("ValidationException"), None]:
        assert transaction_conflict_delay(response, 1) is None


def test_a_write_meeting_an_ongoing_transaction_waits_for_it(lock_table):
    """The steps' client tries again until the transaction answered; a plain client is refused (the control)."""
    item = {"TableName": lock_table, "Key": {"lock_key": {"S": "ws/dep"}}}

    def set_n(value: str) -> dict:
        return {**item, "UpdateExpression": "SET n = :v", "ExpressionAttributeValues": {":v": {"S": value}}}

    @contextmanager
    def transaction_ongoing() -> Iterator[None]:
        transaction = threading.Thread(target=client("dynamodb").transact_write_items,
                                       kwargs={"TransactItems": [{"Update": set_n("transaction")}]})
        transaction.start()
        time.sleep(0.05)
        yield
        transaction.join()

    with atomic_item_writes(transaction_seconds=0.3):
        with transaction_ongoing(), pytest.raises(ClientError, match="TransactionConflictException"):
            boto3.client("dynamodb").update_item(**set_n("plain"))
        with transaction_ongoing():
            client("dynamodb").update_item(**set_n("retried"))
        assert client("dynamodb").get_item(**item)["Item"]["n"]["S"] == "retried"
