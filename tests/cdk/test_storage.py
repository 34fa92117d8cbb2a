"""The DAG bucket, its access-log bucket, and the table of deployment locks."""

import pytest

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
SSE_S3 = {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


@pytest.fixture(scope="module")
def dag_bucket(synthesized, dag_bucket_id) -> dict:
    return synthesized.properties(dag_bucket_id)


@pytest.fixture(scope="module")
def access_logs_bucket_id(dag_bucket) -> str:
    return dag_bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"]


def bucket_policy(synthesized, bucket_id: str) -> list[dict]:
    (policy,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.of_type("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    return policy


def denies_plain_http(statements: list[dict]) -> bool:
    return any(
        statement["Effect"] == "Deny"
        and statement["Action"] == "s3:*"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in statements
    )


def test_the_dag_bucket_is_versioned_private_encrypted_and_tls_only(synthesized, dag_bucket_id, dag_bucket):
    assert dag_bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert dag_bucket["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert dag_bucket["BucketEncryption"] == SSE_S3
    assert denies_plain_http(bucket_policy(synthesized, dag_bucket_id))


def test_old_versions_plans_and_restore_points_expire(synthesized, dag_bucket):
    rules = {rule["Id"]: rule for rule in dag_bucket["LifecycleConfiguration"]["Rules"]}
    noncurrent = rules["expire-noncurrent-versions"]
    assert noncurrent["NoncurrentVersionExpiration"] == {"NoncurrentDays": synthesized.context["noncurrentVersionDays"]}
    assert "Prefix" not in noncurrent
    plans = rules["expire-plans"]
    assert plans["Prefix"] == "plans/"
    assert plans["ExpirationInDays"] == 30
    restore_points = rules["expire-restore-points"]
    assert restore_points["Prefix"] == "restore-points/"
    assert restore_points["ExpirationInDays"] == 30
    assert all(rule["Status"] == "Enabled" for rule in rules.values())


def test_the_dag_bucket_logs_access_to_a_private_tls_only_bucket(synthesized, access_logs_bucket_id):
    logs_bucket = synthesized.properties(access_logs_bucket_id)
    assert logs_bucket["PublicAccessBlockConfiguration"] == BLOCK_ALL
    assert logs_bucket["BucketEncryption"] == SSE_S3
    (expiry,) = logs_bucket["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == synthesized.context["logRetentionDays"]
    statements = bucket_policy(synthesized, access_logs_bucket_id)
    assert denies_plain_http(statements)
    assert any(statement["Principal"] == {"Service": "logging.s3.amazonaws.com"} for statement in statements)


def test_the_lock_table_holds_leases_keyed_by_deployment_that_expire_by_ttl(synthesized):
    table_id = synthesized.output_ref("LockTableName")
    table = synthesized.resources[table_id]
    properties = table["Properties"]
    # shared.locking writes these attributes.
    assert properties["KeySchema"] == [{"AttributeName": "lock_key", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "lock_key", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    # Leases only: nothing to keep once the stack is gone.
    assert table["DeletionPolicy"] == "Delete"
