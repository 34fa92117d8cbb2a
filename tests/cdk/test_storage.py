"""The DAG bucket, its access-log bucket, and the table of deployment locks."""

import pytest
from aws_cdk.assertions import Capture, Match

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
SSE_S3 = {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
DENY_PLAIN_HTTP = Match.object_like(
    {"Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
)


@pytest.fixture(scope="module")
def access_logs_bucket_id(synthesized, dag_bucket_id) -> str:
    logs_bucket = Capture()
    synthesized.has(
        dag_bucket_id, "AWS::S3::Bucket", {"LoggingConfiguration": {"DestinationBucketName": {"Ref": logs_bucket}}}
    )
    return logs_bucket.as_string()


def assert_denies_plain_http(synthesized, bucket_id: str, *statements) -> None:
    synthesized.template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"Bucket": {"Ref": bucket_id}, "PolicyDocument": {"Statement": Match.array_with([DENY_PLAIN_HTTP, *statements])}},
    )


def test_the_dag_bucket_is_versioned_private_encrypted_and_tls_only(synthesized, dag_bucket_id):
    synthesized.has(
        dag_bucket_id,
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": Match.exact({"Status": "Enabled"}),
            "PublicAccessBlockConfiguration": Match.exact(BLOCK_ALL),
            "BucketEncryption": Match.exact(SSE_S3),
        },
    )
    assert_denies_plain_http(synthesized, dag_bucket_id)


def test_old_versions_plans_and_restore_points_expire(synthesized, dag_bucket_id):
    rules = Capture()
    synthesized.has(dag_bucket_id, "AWS::S3::Bucket", {"LifecycleConfiguration": {"Rules": rules}})
    by_id = {rule["Id"]: rule for rule in rules.as_array()}
    noncurrent = by_id["expire-noncurrent-versions"]
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": synthesized.context["noncurrentVersionDays"]}
    assert "Prefix" not in noncurrent
    plans = by_id["expire-plans"]
    assert plans["Prefix"] == "plans/"
    assert plans["ExpirationInDays"] == 30
    restore_points = by_id["expire-restore-points"]
    assert restore_points["Prefix"] == "restore-points/"
    assert restore_points["ExpirationInDays"] == 30
    assert all(rule["Status"] == "Enabled" for rule in by_id.values())


def test_the_dag_bucket_logs_access_to_a_private_tls_only_bucket(synthesized, access_logs_bucket_id):
    synthesized.has(
        access_logs_bucket_id,
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": Match.exact(BLOCK_ALL),
            "BucketEncryption": Match.exact(SSE_S3),
            "LifecycleConfiguration": {"Rules": [{"ExpirationInDays": synthesized.context["logRetentionDays"]}]},
        },
    )
    assert_denies_plain_http(
        synthesized,
        access_logs_bucket_id,
        Match.object_like({"Principal": {"Service": "logging.s3.amazonaws.com"}}),
    )


def test_the_lock_table_holds_leases_keyed_by_deployment_that_expire_by_ttl(synthesized):
    table_id = synthesized.output_ref("LockTableName")
    synthesized.has(
        table_id,
        "AWS::DynamoDB::Table",
        {
            # shared.locking writes these attributes.
            "KeySchema": Match.exact([{"AttributeName": "lock_key", "KeyType": "HASH"}]),
            "AttributeDefinitions": Match.exact([{"AttributeName": "lock_key", "AttributeType": "S"}]),
            "TimeToLiveSpecification": Match.exact({"AttributeName": "expires_at", "Enabled": True}),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": Match.exact({"PointInTimeRecoveryEnabled": True}),
            "SSESpecification": Match.exact({"SSEEnabled": True}),
        },
    )
    # Leases only: nothing to keep once the stack is gone.
    assert table_id in synthesized.template.find_resources("AWS::DynamoDB::Table", {"DeletionPolicy": "Delete"})
