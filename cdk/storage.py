"""The DAG bucket (every repo's files under dags/, the plans Parse writes under plans/, the restore points
Snapshot writes under restore-points/) and the table of deployment locks."""

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk.config import StackSettings
from functions.shared.paths import PLANS_ROOT, RESTORE_POINTS_ROOT

# A plan or a restore point serves one execution; a month leaves time to investigate a failed run.
PLAN_RETENTION = Duration.days(30)
RESTORE_POINT_RETENTION = Duration.days(30)
# Attribute names shared.locking writes.
LOCK_KEY_ATTRIBUTE = "lock_key"
LOCK_EXPIRY_ATTRIBUTE = "expires_at"


def expiring_table(scope: Construct, construct_id: str, key: str, expiry: str,
                   stream: dynamodb.StreamViewType | None = None) -> dynamodb.Table:
    """A table of short-lived items keyed by one string, each removed by TTL at its `expiry` attribute: deleting it
    with the stack loses nothing but items still in use."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=expiry,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=RemovalPolicy.DESTROY,
        stream=stream,
    )


class DagStorage(Construct):
    def __init__(self, scope: Construct, construct_id: str, settings: StackSettings):
        super().__init__(scope, construct_id)

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # Server access logging delivers only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(settings.log_retention_days))
            ],
        )
        self.bucket = s3.Bucket(
            self,
            "DagBucket",
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="dag-bucket/",
            lifecycle_rules=[
                # Versions keep what ClearPrefix deleted recoverable for a while (manual rollback); the delete
                # markers it leaves are removed once no version is left behind them.
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_days),
                    expired_object_delete_marker=True,
                ),
                s3.LifecycleRule(id="expire-plans", prefix=PLANS_ROOT, expiration=PLAN_RETENTION),
                s3.LifecycleRule(
                    id="expire-restore-points", prefix=RESTORE_POINTS_ROOT, expiration=RESTORE_POINT_RETENTION
                ),
            ],
        )
        # One item per deployment being deployed: a lease, not data. Expired leases are ignored by the lock
        # and removed by TTL; deleting the table with the stack loses nothing but the leases of running executions.
        # Its stream tells the waker each removed item, as it was: who waited for it (cdk/lock_wakeups.py).
        self.lock_table = expiring_table(self, "LockTable", LOCK_KEY_ATTRIBUTE, LOCK_EXPIRY_ATTRIBUTE,
                                         stream=dynamodb.StreamViewType.OLD_IMAGE)
