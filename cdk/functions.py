"""The step functions and the recovery function, each with its own role allowed only what it does; and how a zip
function is built, which the status function (cdk/status.py) shares."""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from aws_cdk import Arn, ArnComponents, Duration, IgnoreMode, Size, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk.astro_targets import AstroTargets
from cdk.config import STEP_TIMEOUT_DEFAULTS, StackSettings, arn_partition_and_region
from cdk.nag import attribute_finding, suppress
from cdk.zip_assets import FUNCTIONS_PACKAGE, PROJECT_ROOT, RUNTIME, SHARED_FOLDER, asset_exclude, zip_code
from functions.shared.paths import ARCHIVES_ROOT, DAGS_ROOT, MANIFESTS_ROOT, PLANS_ROOT, RESTORE_POINTS_ROOT

POWERTOOLS_PARAMETER = "/aws/service/powertools/python/x86_64/python3.12/{version}"
METRICS_NAMESPACE = "AstroDagDeploy"
# Where functions/deploy/Dockerfile installs the astro CLI.
ASTRO_CLI_PATH = "/usr/local/bin/astro"
DEPLOY_HANDLER = "functions.deploy.app.handler"
DEPLOY_MEMORY_MB = 2048
# The downloaded dags folder and the bundle.tar / bundle.tar.gz the CLI builds from it, side by side.
DEPLOY_EPHEMERAL_STORAGE = Size.gibibytes(4)
# Of that storage, what the bundles kept for the next ships may hold (functions/deploy/warm_bundle.py).
KEPT_BUNDLES_BYTES = int(DEPLOY_EPHEMERAL_STORAGE.to_bytes()) // 8
# Parse refuses a bundle that could never ship (functions/parse/planning.py): Deploy gathers it in the storage the
# kept bundles leave, where the CLI then writes bundle.tar (at least as large) and bundle.tar.gz.
BUNDLE_LIMIT_BYTES = (int(DEPLOY_EPHEMERAL_STORAGE.to_bytes()) - KEPT_BUNDLES_BYTES) // 2
# EventBridge invokes Recover asynchronously: Lambda retries a failed recovery, then parks the event for a person.
RECOVERY_RETRY_ATTEMPTS = 2
RECOVERY_MAX_EVENT_AGE = Duration.hours(6)
DEAD_LETTER_RETENTION = Duration.days(14)


@dataclass(frozen=True)
class ObjectScope:
    """Objects a statement may touch, and why IAM cannot name them more narrowly than a key pattern."""

    arn: str
    finding: str  # how cdk-nag names the ARN
    reason: str


@dataclass(frozen=True)
class ZipStep:
    folder: str
    construct_id: str
    memory_mb: int
    timeout: Duration
    purpose: str = ""  # the description's end; by default "<construct_id> step"

    @property
    def handler(self) -> str:
        return f"{FUNCTIONS_PACKAGE}.{self.folder}.app.handler"

    @property
    def description(self) -> str:
        return f"astro-dag-deploy {self.purpose or self.construct_id + ' step'}"


def _step(folder: str, construct_id: str, memory_mb: int, purpose: str = "") -> ZipStep:
    """A pipeline step with its default timeout; `stepTimeoutsSeconds` in cdk.json may set another."""
    return ZipStep(folder, construct_id, memory_mb, Duration.seconds(STEP_TIMEOUT_DEFAULTS[construct_id]), purpose)


PARSE = _step("parse", "Parse", 1024)
LOCK = _step("acquire_lock", "AcquireLock", 256)
SNAPSHOT = _step("snapshot", "Snapshot", 512)
CLEAR_PREFIX = _step("clear_prefix", "ClearPrefix", 512)
UPLOAD = _step("upload", "Upload", 512)
ROLLBACK = _step("rollback", "Rollback", 512)
NOTIFY = _step("notify", "Notify", 256)
RECOVER = _step("recover", "Recover", 512,
                purpose="Recover step of the recovery of stopped and timed-out executions (restore, fenced by the lock)")
# A few S3 reads and one listing; it counts in the worst case of every execution (cdk/time_budget.py).
COMPARE = ZipStep("compare", "Compare", 256, Duration.seconds(30), purpose="CompareWithLive step")
DRY_RUN = ZipStep("dry_run", "DryRun", 256, Duration.minutes(2))
# A few DynamoDB and Step Functions calls per removed lock item.
WAKE_WAITERS = ZipStep("wake_waiters", "WakeWaiters", 256, Duration.seconds(30),
                       purpose="lock waker (hands a released lock's turn to the execution waiting longest)")
SWEEPER = ZipStep("sweeper", "Sweeper", 256, Duration.minutes(5),
                  purpose="sweeper (starts the recovery of stopped and timed-out executions, frees stale leases)")


def configured(step: ZipStep, settings: StackSettings) -> ZipStep:
    """The step with the timeout cdk.json gives it."""
    if step.construct_id not in STEP_TIMEOUT_DEFAULTS:
        return step
    return replace(step, timeout=Duration.seconds(settings.step_timeout_seconds(step.construct_id)))


def zip_function(
    scope: Construct,
    step: ZipStep,
    variables: dict[str, str],
    *,
    settings: StackSettings,
    layer: lambda_.ILayerVersion,
    **options,
) -> lambda_.Function:
    """A zip function carrying only functions/<step.folder>/ and functions/shared/, traced, with its own role and
    log group."""
    log_group = _log_group(scope, step.construct_id, settings)
    function = lambda_.Function(
        scope,
        f"{step.construct_id}Function",
        description=step.description,
        code=zip_code(step.folder),
        handler=step.handler,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        layers=[layer],
        memory_size=step.memory_mb,
        timeout=step.timeout,
        environment=_environment(variables),
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=_role(scope, step.construct_id, log_group),
        **options,
    )
    _suppress_tracing_wildcard(function)
    suppress(
        function,
        "L1",
        "python3.12 is the zip functions' contract: the public powertools layer is read for python3.12, the "
        "version the tests run.",
    )
    return function


def _log_group(scope: Construct, construct_id: str, settings: StackSettings) -> logs.LogGroup:
    return logs.LogGroup(scope, f"{construct_id}Logs", retention=settings.log_retention)


def _role(scope: Construct, construct_id: str, log_group: logs.ILogGroup) -> iam.Role:
    # An own role instead of the default one: AWSLambdaBasicExecutionRole would let it write to every log group.
    role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    log_group.grant_write(role)
    return role


def _environment(variables: dict[str, str]) -> dict[str, str]:
    return {"POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE, "POWERTOOLS_LOG_LEVEL": "INFO", **variables}


def _suppress_tracing_wildcard(function: lambda_.Function) -> None:
    suppress(
        function.role,
        "IAM5",
        "X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions: active tracing "
        "needs Resource *.",
        ["Resource::*"],
    )


def manifests_scope(bucket: s3.IBucket) -> ObjectScope:
    """What is live per deployment: manifests/<workspace>/<deployment>/{repos,bundles}/<name>.json."""
    return ObjectScope(
        bucket.arn_for_objects(f"{MANIFESTS_ROOT}*"),
        attribute_finding(bucket.node.default_child, f"/{MANIFESTS_ROOT}*"),
        "Keys under manifests/ are named by each request (workspace/deployment/repo or bundle): IAM can bound them "
        "only to manifests/; every key is rebuilt from validated names.",
    )


class PipelineFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        bucket: s3.IBucket,
        lock_table: dynamodb.ITable,
        topic: sns.ITopic,
        notified_table: dynamodb.ITable,
    ):
        super().__init__(scope, construct_id)
        self._settings = settings
        # The status function (cdk/status.py) runs on it too.
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            # Read at deploy time: the layer of exactly the powertools version the tests run.
            ssm.StringParameter.value_for_string_parameter(
                self, POWERTOOLS_PARAMETER.format(version=settings.powertools_version)
            ),
        )
        self.token_secret = self._token_secret(settings)
        self.astro_targets = AstroTargets(self, "AstroTargets", settings)

        self.parse = self._zip_function(
            PARSE,
            {
                "DAG_BUCKET": bucket.bucket_name,
                "SOURCE_BUCKETS": ",".join(settings.source_buckets),
                "BUNDLE_LIMIT_BYTES": str(BUNDLE_LIMIT_BYTES),
                **self.astro_targets.environment,
            },
        )
        self.lock = self._zip_function(
            LOCK,
            {
                "LOCK_TABLE": lock_table.table_name,
                "LOCK_LEASE_SECONDS": str(settings.lock_lease_seconds),
                "LOCK_MAX_WAIT_SECONDS": str(settings.lock_max_wait_minutes * 60),
            },
        )
        self.snapshot = self._zip_function(SNAPSHOT, {"DAG_BUCKET": bucket.bucket_name})
        self.clear_prefix = self._zip_function(CLEAR_PREFIX, {"DAG_BUCKET": bucket.bucket_name})
        self.upload = self._zip_function(UPLOAD, {"DAG_BUCKET": bucket.bucket_name})
        # The lock table: Rollback ends the execution's ship slot once the repo is back.
        self.rollback = self._zip_function(ROLLBACK, {"DAG_BUCKET": bucket.bucket_name,
                                                      "LOCK_TABLE": lock_table.table_name})
        # The bucket: the report of a request Parse refused names who it was for.
        self.notify = self._zip_function(NOTIFY, {"TOPIC_ARN": topic.topic_arn, "DAG_BUCKET": bucket.bucket_name,
                                                  "NOTIFIED_TABLE": notified_table.table_name})
        self.compare = self._zip_function(COMPARE, {"DAG_BUCKET": bucket.bucket_name})
        self.dry_run = self._zip_function(DRY_RUN, {"DAG_BUCKET": bucket.bucket_name})
        # Recovery starts Lambda (function errors) or EventBridge (delivery) gave up on: the sweep retries them.
        self.recovery_dead_letters = sqs.Queue(
            self,
            "RecoveryDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        suppress(
            self.recovery_dead_letters,
            "SQS3",
            "This queue is itself the dead-letter queue of the Sweeper function and of its EventBridge target; "
            "cdk-nag recognizes only queues named in another queue's redrive policy.",
        )
        self.recover = self._zip_function(
            RECOVER,
            {
                "DAG_BUCKET": bucket.bucket_name,
                "LOCK_TABLE": lock_table.table_name,
                # The lease Recover renews before it restores: as long as an execution's.
                "LOCK_LEASE_SECONDS": str(settings.lock_lease_seconds),
            },
        )
        self.deploy = self._deploy_function(
            {
                "DAG_BUCKET": bucket.bucket_name,
                **self.astro_targets.environment,
                "ASTRO_TOKEN_SECRET_ARN": self.token_secret.secret_arn,
                "ASTRO_CLI": ASTRO_CLI_PATH,
                # The deployment's ships item: the deferred changes a ship carries (functions/shared/deferred_ships.py);
                # and its lock, handed over to the ship slot for the CLI's upload, with the lock's lease.
                "LOCK_TABLE": lock_table.table_name,
                "LOCK_LEASE_SECONDS": str(settings.lock_lease_seconds),
                "KEPT_BUNDLES_BYTES": str(KEPT_BUNDLES_BYTES),
            }
        )

        bucket_resource = bucket.node.default_child
        dags = ObjectScope(
            bucket.arn_for_objects(f"{DAGS_ROOT}*"),
            attribute_finding(bucket_resource, f"/{DAGS_ROOT}*"),
            "Keys under dags/ are named by each request (workspace/deployment/repo): IAM can bound them only to "
            "dags/; the steps rebuild every key from validated names.",
        )
        plans = ObjectScope(
            bucket.arn_for_objects(f"{PLANS_ROOT}*"),
            attribute_finding(bucket_resource, f"/{PLANS_ROOT}*"),
            "Each execution writes and reads plans/<execution name>.json; the name exists only at run time.",
        )
        restore_points = ObjectScope(
            bucket.arn_for_objects(f"{RESTORE_POINTS_ROOT}*"),
            attribute_finding(bucket_resource, f"/{RESTORE_POINTS_ROOT}*"),
            "Each execution writes and reads restore-points/<execution name>.json; the name exists only at run "
            "time.",
        )
        archives = ObjectScope(
            bucket.arn_for_objects(f"{ARCHIVES_ROOT}*"),
            attribute_finding(bucket_resource, f"/{ARCHIVES_ROOT}*"),
            "Each repo prefix's archive is archives/<workspace>/<deployment>/<repo>.zip, named by each request: IAM "
            "can bound it only to archives/.",
        )
        manifests = manifests_scope(bucket)
        sources = [
            ObjectScope(
                self._bucket_arn(name, "*"),
                f"Resource::arn:<AWS::Partition>:s3:::{name}/*",
                f"Requests name any object of the allow-listed source bucket {name} (sourceBuckets in cdk.json).",
            )
            for name in settings.source_buckets
        ]
        self._allow(self.parse, ["s3:ListBucket"], [self._bucket_arn(name) for name in settings.source_buckets])
        self._allow_objects(self.parse, ["s3:GetObject"], sources)
        self._allow_decrypting(self.parse, settings.source_kms_key_arns, "s3")
        self._allow_objects(self.parse, ["s3:PutObject"], [plans])
        # The deployment's repo folders: a per-repo bundle name another repo already uses is refused; the other
        # repos' manifests or live files: the imports and dag_ids the bundle will hold (functions/shared/live_repos.py).
        self._allow_listing(self.parse, bucket)
        self._allow_objects(self.parse, ["s3:GetObject"], [dags, manifests])
        # Taking the lock and waiting for it are both updates of its item (the waiters stay in it); deferring a ship
        # deletes it and records the deferred change in one transaction.
        self._allow(self.lock, ["dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                    [lock_table.table_arn])
        self._allow_listing(self.snapshot, bucket, "s3:ListBucketVersions")
        self._allow_objects(self.snapshot, ["s3:PutObject"], [restore_points])
        # The dag_ids checked again once the lock is held: the plan, and the other repos' manifests or live files.
        self._allow_listing(self.snapshot, bucket)
        self._allow_objects(self.snapshot, ["s3:GetObject"], [plans, dags, manifests])
        self._allow_listing(self.clear_prefix, bucket)
        # The repo's archive too: it no longer holds the prefix once the prefix changes.
        self._allow_objects(self.clear_prefix, ["s3:DeleteObject"], [dags, archives])
        self._allow_objects(self.upload, ["s3:GetObject"], [plans])
        self._allow_objects(self.notify, ["s3:GetObject"], [plans])
        # CopyObject reads the source with the caller's permissions.
        self._allow_objects(self.upload, ["s3:GetObject"], sources)
        # The DAG bucket encrypts with SSE-S3 (cdk/storage.py): writing the copies needs no key.
        self._allow_decrypting(self.upload, settings.source_kms_key_arns, "s3")
        self._allow_objects(self.upload, ["s3:PutObject"], [dags])
        self._allow_listing(self.deploy, bucket)
        self._allow_objects(self.deploy, ["s3:GetObject"], [dags, archives])
        # The archive of each repo it read object by object, from the files it downloaded.
        self._allow_objects(self.deploy, ["s3:PutObject"], [archives])
        # What is live, recorded from the execution's plan (functions/shared/manifest.py); read back by a deferred
        # execution that comes back to ship: whether a ship carried its change meanwhile.
        self._allow_objects(self.deploy, ["s3:GetObject"], [plans, manifests])
        self._allow_objects(self.deploy, ["s3:PutObject"], [manifests])
        # Reading only: the plan against the manifests, and the repo prefixes' ETags.
        for comparer in (self.compare, self.dry_run):
            self._allow_objects(comparer, ["s3:GetObject"], [plans, manifests])
            # The repo prefixes' ETags; and, without a prefix condition, a manifest not recorded yet (a repo never
            # deployed) reads as 404, not 403 (a GET has no prefix).
            self._allow(comparer, ["s3:ListBucket"], [bucket.bucket_arn])
        # The deferred changes a ship carries: read, then told or marked with the failed ship; the lock handed over
        # to the ship slot (a transaction: the lock's item deleted, the slot's updated), and the slot ended.
        self._allow(self.deploy, ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    [lock_table.table_arn])
        self.token_secret.grant_read(self.deploy)
        if settings.astro_token_secret_kms_key_arn:
            self._allow_decrypting(self.deploy, [settings.astro_token_secret_kms_key_arn], "secretsmanager")
        for restorer in (self.rollback, self.recover):
            self._allow_restoring(restorer, bucket, dags, restore_points)
        # Once the repo is back: its deferred change withdrawn, its ship slot ended (functions/shared/ship_slot.py).
        self._allow(self.rollback, ["dynamodb:UpdateItem", "dynamodb:DeleteItem"], [lock_table.table_arn])
        # The lease renewed (the lock's, or the ship slot's); the lock taken back, and the slot ended, for a re-ship.
        self._allow(self.recover, ["dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                    [lock_table.table_arn])
        # Whether the stopped execution had deferred its ship: a later ship carried it if its repo's live record
        # names it.
        self._allow_objects(self.recover, ["s3:GetObject"], [manifests])
        for resolver in (self.parse, self.deploy):
            self.astro_targets.grant_read(resolver)
        topic.grant_publish(self.notify)
        # powertools' idempotency: its record of the execution, read, written, completed, or deleted after a failure.
        self._allow(self.notify, ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    [notified_table.table_arn])
        suppress(
            self.notify.role,
            "IAM5",
            "Publishing to an SSE-KMS topic needs kms:GenerateDataKey* on its key (as AWS documents it); the "
            "resource is the topic's own key.",
            ["Action::kms:GenerateDataKey*"],
        )

    def _token_secret(self, settings: StackSettings) -> secretsmanager.ISecret:
        if settings.astro_token_secret_arn:
            return secretsmanager.Secret.from_secret_complete_arn(self, "AstroToken", settings.astro_token_secret_arn)
        secret = secretsmanager.Secret(
            self,
            "AstroToken",
            description="Astro API token of the astro-dag-deploy Deploy step: replace the generated value with it",
        )
        suppress(
            secret,
            "SMG4",
            "Astronomer issues the Astro API token; Secrets Manager has no rotation function for it, the operator "
            "stores a new token before Astro expires the old one.",
        )
        return secret

    def _zip_function(self, step: ZipStep, variables: dict[str, str], **options) -> lambda_.Function:
        return zip_function(self, configured(step, self._settings), variables, settings=self._settings,
                            layer=self.powertools, **options)

    @property
    def invoked(self) -> list[lambda_.IFunction]:
        """The functions the deploy state machine invokes (their invocations may outlive an execution)."""
        return [self.parse, self.dry_run, self.lock, self.compare, self.snapshot, self.clear_prefix, self.upload,
                self.deploy, self.rollback, self.notify]

    def _deploy_function(self, variables: dict[str, str]) -> lambda_.DockerImageFunction:
        log_group = _log_group(self, "Deploy", self._settings)
        function = lambda_.DockerImageFunction(
            self,
            "DeployFunction",
            description="astro-dag-deploy Deploy step (astro CLI)",
            code=lambda_.DockerImageCode.from_image_asset(
                str(PROJECT_ROOT),
                file=f"{FUNCTIONS_PACKAGE}/deploy/Dockerfile",
                cmd=[DEPLOY_HANDLER],
                exclude=asset_exclude("deploy", SHARED_FOLDER),
                ignore_mode=IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            architecture=lambda_.Architecture.X86_64,
            memory_size=DEPLOY_MEMORY_MB,
            ephemeral_storage_size=DEPLOY_EPHEMERAL_STORAGE,
            timeout=Duration.seconds(self._settings.deploy_timeout_seconds),
            environment=_environment(variables),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=_role(self, "Deploy", log_group),
        )
        _suppress_tracing_wildcard(function)
        return function

    def _bucket_arn(self, bucket_name: str, object_pattern: str | None = None) -> str:
        resource = bucket_name if object_pattern is None else f"{bucket_name}/{object_pattern}"
        return Arn.format(ArnComponents(service="s3", region="", account="", resource=resource), Stack.of(self))

    def _allow(
        self, function: lambda_.Function, actions: list[str], resources: list[str], conditions: dict | None = None
    ) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))

    def _allow_decrypting(self, function: lambda_.Function, key_arns: Sequence[str], service: str) -> None:
        """kms:Decrypt on customer-managed keys, only for requests `service` makes on the function's behalf.

        Hand-written: the CDK's key grants leave out keys imported from another (or an unresolved) environment.
        A key serves only its own Region's services: one statement per Region.
        """
        regions = sorted({arn_partition_and_region(arn)[1] for arn in key_arns})
        for region in regions:
            self._allow(
                function,
                ["kms:Decrypt"],
                [arn for arn in key_arns if arn_partition_and_region(arn)[1] == region],
                {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}},
            )

    def _allow_objects(self, function: lambda_.Function, actions: list[str], scopes: list[ObjectScope]) -> None:
        self._allow(function, actions, [scope.arn for scope in scopes])
        for scope in scopes:
            suppress(function.role, "IAM5", scope.reason, [scope.finding])

    def _allow_listing(self, function: lambda_.Function, bucket: s3.IBucket, action: str = "s3:ListBucket") -> None:
        """Listing (keys, or versions) under dags/ only: the steps list the repo and deployment prefixes."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[action],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{DAGS_ROOT}*"]}},
            )
        )

    def _allow_restoring(
        self, function: lambda_.Function, bucket: s3.IBucket, dags: ObjectScope, restore_points: ObjectScope
    ) -> None:
        """Read a restore point and put the repo prefix back: copy old versions over, delete what was added."""
        # S3 answers a GET of a missing key with 404 only to callers allowed ListBucket on the bucket (a condition
        # on s3:prefix does not count: a GET has no prefix), else 403. Without it, an execution stopped before
        # Snapshot would read as a failed rollback instead of "nothing to restore".
        self._allow(function, ["s3:ListBucket"], [bucket.bucket_arn])
        self._allow_listing(function, bucket, "s3:ListBucketVersions")
        self._allow_objects(function, ["s3:GetObject"], [restore_points])
        self._allow_objects(
            function, ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"], [dags]
        )
