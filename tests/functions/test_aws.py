from datetime import datetime, timezone

import pytest
from botocore.utils import parse_timestamp

from functions.shared import aws as step_aws
from functions.shared.aws import client, parse_response_timestamp
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
