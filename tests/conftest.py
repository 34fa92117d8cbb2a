"""Fixtures shared by every test: an embedded AWS (moto) and the Lambda context the handlers expect."""

import os

import pytest
from moto import mock_aws
from testkit import DAG_BUCKET, REGION, SOURCE_BUCKET, FakeLambdaContext

from functions.shared.aws import client, forget_clients

# Before anything starts jsii (cdk/app.py sets the same): no Node end-of-life banner in test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


LOCK_TABLE = "locks"


@pytest.fixture
def aws(monkeypatch):
    """An empty embedded AWS; the steps' cached boto3 clients are made anew inside it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "AstroDagDeploy",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    forget_clients()
    with mock_aws():
        yield
    forget_clients()


@pytest.fixture
def buckets(aws):
    """The DAG bucket (versioned, as the stack makes it) and one allow-listed source bucket."""
    s3 = client("s3")
    for bucket in (DAG_BUCKET, SOURCE_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=DAG_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


@pytest.fixture
def lock_table(aws) -> str:
    """The lock table, as the stack makes it (without its stream): its name."""
    client("dynamodb").create_table(
        TableName=LOCK_TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}],
    )
    return LOCK_TABLE


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def gets(buckets) -> list[str]:
    """The key of every GetObject the steps make from here on."""
    keys: list[str] = []
    client("s3").meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: keys.append(params["Key"]))
    return keys
