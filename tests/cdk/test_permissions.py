"""Least privilege: each role holds exactly the statements its step needs, scoped to prefixes, the secret, the topic."""

import pytest
from aws_cdk.assertions import Capture, Match

from local_mode.template import TokenResolver

# Actions AWS offers no resource-level permissions for; the only ones allowed on "*".
WILDCARD_ONLY_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # A DynamoDB stream's event source mapping lists the streams first.
    "dynamodb:ListStreams",
}
RECOVER_HANDLER = "functions.recover.app.handler"
STATUS_HANDLER = "functions.status.app.handler"
SWEEPER_HANDLER = "functions.sweeper.app.handler"
WAKE_WAITERS_HANDLER = "functions.wake_waiters.app.handler"
TRACING = {"Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Effect": "Allow", "Resource": "*"}
DAGS_PREFIX_ONLY = {"StringLike": {"s3:prefix": ["dags/*"]}}
# The astroDeployments entries of this stack only (cdk/astro_targets.py), read by the functions resolving targets.
READ_ASTRO_TARGETS = {
    "Action": "ssm:GetParameters",
    "Effect": "Allow",
    "Resource": "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/astro-dag-deploy/"
                "AstroDagDeployTest/astro-deployments/*",
}
RESTORING = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject"]
# Values for the references of a deployed stack, to read ARNs that CloudFormation computes.
PARTITION, REGION, ACCOUNT = "aws", "eu-west-1", "123456789012"
MACHINE_ARN = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:PipelineStateMachine-AbC123"


def allow(action, resource, **extra) -> dict:
    return {"Action": action, "Effect": "Allow", "Resource": resource, **extra}


def decrypt_via(service: str, region: str, key_arn: str) -> dict:
    via = {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}
    return allow("kms:Decrypt", key_arn, Condition=via)


def source_key_statements(synthesized) -> list[dict]:
    """kms:Decrypt on each source key, only through S3 of the key's own Region."""
    first, second = synthesized.context["sourceKmsKeyArns"]
    return [decrypt_via("s3", "eu-central-1", second), decrypt_via("s3", "eu-west-1", first)]


@pytest.fixture(scope="module")
def ids(synthesized) -> dict[str, str]:
    return {
        "bucket": synthesized.output_ref("DagBucketName"),
        "table": synthesized.output_ref("LockTableName"),
        "topic": synthesized.output_ref("FailureTopicArn"),
        "secret": synthesized.output_ref("AstroTokenSecretArn"),
        "machine": synthesized.output_ref("StateMachineArn"),
    }


def log_group_id(synthesized, function_id: str) -> str:
    log_group = Capture()
    synthesized.has(function_id, "AWS::Lambda::Function", {"LoggingConfig": {"LogGroup": {"Ref": log_group}}})
    return log_group.as_string()


def topic_key_id(synthesized, topic_id: str) -> str:
    key = Capture()
    synthesized.has(topic_id, "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
    return key.as_string()


def function_statements(synthesized, handler: str) -> list[dict]:
    function_id = synthesized.function_id(handler)
    log_group = log_group_id(synthesized, function_id)
    statements = synthesized.statements(synthesized.role_id(function_id))
    # Every function writes its own log group, and nothing else of CloudWatch Logs.
    assert allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"<{log_group}.Arn>") in statements
    assert TRACING in statements
    return [statement for statement in statements if statement != TRACING and "logs:" not in str(statement)]


def test_parse_reads_only_allow_listed_sources_and_writes_only_plans(synthesized, ids):
    sources = ["arn:<AWS::Partition>:s3:::ci-artifacts-a", "arn:<AWS::Partition>:s3:::ci-artifacts-b"]
    assert function_statements(synthesized, "functions.parse.app.handler") == [
        allow("s3:ListBucket", sources),
        allow("s3:GetObject", [f"{source}/*" for source in sources]),
        *source_key_statements(synthesized),
        allow("s3:PutObject", f"<{ids['bucket']}.Arn>/plans/*"),
        # The deployment's repo folders, for the per-repo bundle clash check, and the other repos' manifests or live
        # files, for the imports and dag_ids of the bundle.
        allow("s3:ListBucket", f"<{ids['bucket']}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:GetObject", [f"<{ids['bucket']}.Arn>/dags/*", f"<{ids['bucket']}.Arn>/manifests/*"]),
        READ_ASTRO_TARGETS,
    ]


def test_acquire_lock_only_writes_and_reads_lock_items(synthesized, ids):
    # Taking the lock and waiting for it update the item; it deletes the lock item only when it defers a ship, in
    # one transaction with the deferred change (the state machine releases the lock otherwise).
    assert function_statements(synthesized, "functions.acquire_lock.app.handler") == [
        allow(["dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"], f"<{ids['table']}.Arn>"),
    ]


def test_the_waker_reads_the_lock_tables_stream_requeues_waiters_and_only_wakes_this_machines_tasks(
    synthesized, ids
):
    table = f"<{ids['table']}.Arn>"
    assert function_statements(synthesized, WAKE_WAITERS_HANDLER) == [
        # The event source mapping's: ListStreams has no resource-level permissions.
        allow("dynamodb:ListStreams", "*"),
        allow(["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
              f"<{ids['table']}.StreamArn>"),
        # Waiters put back, the deployment's ships item read and what was told removed.
        allow(["dynamodb:UpdateItem", "dynamodb:GetItem"], table),
        allow("states:SendTaskSuccess", f"<{ids['machine']}>"),
    ]


def test_snapshot_reads_under_dags_and_its_plan_and_writes_only_restore_points(synthesized, ids):
    assert function_statements(synthesized, "functions.snapshot.app.handler") == [
        allow("s3:ListBucketVersions", f"<{ids['bucket']}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:PutObject", f"<{ids['bucket']}.Arn>/restore-points/*"),
        # The dag_ids checked again once the lock is held: its plan and the other repos' manifests or live files.
        allow("s3:ListBucket", f"<{ids['bucket']}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:GetObject", [f"<{ids['bucket']}.Arn>/plans/*", f"<{ids['bucket']}.Arn>/dags/*",
                               f"<{ids['bucket']}.Arn>/manifests/*"]),
    ]


def restoring_statements(bucket_id: str) -> list[dict]:
    return [
        # Unconditioned: S3 answers a GET of a missing restore point with 404, not 403, only to ListBucket holders.
        allow("s3:ListBucket", f"<{bucket_id}.Arn>"),
        allow("s3:ListBucketVersions", f"<{bucket_id}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:GetObject", f"<{bucket_id}.Arn>/restore-points/*"),
        allow(RESTORING, f"<{bucket_id}.Arn>/dags/*"),
    ]


def test_rollback_reads_restore_points_rewrites_only_under_dags_and_ends_its_ship(synthesized, ids):
    assert function_statements(synthesized, "functions.rollback.app.handler") == [
        *restoring_statements(ids["bucket"]),
        # Once the repo is back: its deferred change withdrawn, its ship slot ended (items of the lock table).
        allow(["dynamodb:UpdateItem", "dynamodb:DeleteItem"], f"<{ids['table']}.Arn>"),
    ]


def test_recover_restores_and_renews_the_lease_only(synthesized, ids):
    # Releasing the lock and notifying are the recovery state machine's own states.
    assert function_statements(synthesized, RECOVER_HANDLER) == [
        *restoring_statements(ids["bucket"]),
        # The lease renewed (the lock's or the ship slot's); the deployment's ships item read: whether the stopped
        # execution deferred its ship; the lock taken back and the slot ended, for the re-ship of a failed ship.
        allow(["dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:DeleteItem"], f"<{ids['table']}.Arn>"),
        # A later ship that carried it recorded its repo as live.
        allow("s3:GetObject", f"<{ids['bucket']}.Arn>/manifests/*"),
    ]


def test_the_sweeper_reads_both_machines_starts_recoveries_and_frees_only_lock_items(synthesized, ids):
    recovery = synthesized.output_ref("RecoveryStateMachineArn")
    queue_id = synthesized.output_ref("RecoveryDeadLettersUrl")
    function_id = synthesized.function_id(SWEEPER_HANDLER)
    everything = synthesized.statements(synthesized.role_id(function_id), rendered=False)
    rendered = synthesized.render([statement for statement in everything if "states:" not in str(statement)])
    assert allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"<{log_group_id(synthesized, function_id)}.Arn>") \
        in rendered and TRACING in rendered
    statements = [statement for statement in everything
                  if "logs:" not in str(statement) and "xray:" not in str(statement)]
    deployed = TokenResolver({}, account=ACCOUNT, region=REGION, stack_name="AstroDagDeploy", partition=PARTITION)
    deployed.register(ids["machine"], MACHINE_ARN)
    deployed.register(recovery, MACHINE_ARN.replace("PipelineStateMachine", "RecoveryStateMachine"))
    executions = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution"
    machines = f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine"
    functions = [f"<{synthesized.function_id(f'functions.{folder}.app.handler')}.Arn>"
                 for folder in ("parse", "dry_run", "acquire_lock", "compare", "snapshot", "clear_prefix", "upload",
                                "deploy", "rollback", "notify")]
    assert [deployed.resolve(statement) if "states:" in str(statement) else synthesized.render(statement)
            for statement in statements] == [
        allow("sqs:SendMessage", f"<{queue_id}.Arn>"),
        allow("states:ListExecutions",
              [f"{machines}:PipelineStateMachine-AbC123", f"{machines}:RecoveryStateMachine-AbC123"]),
        # Executions are named at run time: any execution of each machine, and of no other.
        allow(["states:DescribeExecution", "states:GetExecutionHistory"],
              f"{executions}:PipelineStateMachine-AbC123:*"),
        allow("states:DescribeExecution", f"{executions}:RecoveryStateMachine-AbC123:*"),
        allow("states:StartExecution", f"{machines}:RecoveryStateMachine-AbC123"),
        # How long each invocation in flight may still run: the deploy machine's functions only.
        allow("lambda:GetFunctionConfiguration", functions),
        allow(["dynamodb:Scan", "dynamodb:DeleteItem"], f"<{ids['table']}.Arn>"),
    ]


def test_the_recovery_machine_invokes_recover_deploy_and_notify_and_deletes_only_lock_items(synthesized, ids):
    recovery = synthesized.output_ref("RecoveryStateMachineArn")
    machine_role = Capture()
    synthesized.has(recovery, "AWS::StepFunctions::StateMachine", {"RoleArn": {"Fn::GetAtt": [machine_role, "Arn"]}})
    statements = synthesized.statements(machine_role.as_string())
    invoked = {resource for statement in statements if statement["Action"] == "lambda:InvokeFunction"
               for resource in statement["Resource"]}
    assert invoked == {f"<{synthesized.function_id(f'functions.{folder}.app.handler')}.Arn>{suffix}"
                       for folder in ("recover", "deploy", "notify") for suffix in ("", ":*")}
    assert [statement for statement in statements if "dynamodb:" in str(statement["Action"])] == [
        allow("dynamodb:DeleteItem",
              f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/<{ids['table']}>")
    ]


def test_clear_prefix_lists_and_deletes_only_under_dags_and_archives(synthesized, ids):
    assert function_statements(synthesized, "functions.clear_prefix.app.handler") == [
        allow("s3:ListBucket", f"<{ids['bucket']}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:DeleteObject", [f"<{ids['bucket']}.Arn>/dags/*", f"<{ids['bucket']}.Arn>/archives/*"]),
    ]


def test_upload_reads_plans_and_sources_and_writes_only_dags(synthesized, ids):
    sources = ["arn:<AWS::Partition>:s3:::ci-artifacts-a/*", "arn:<AWS::Partition>:s3:::ci-artifacts-b/*"]
    assert function_statements(synthesized, "functions.upload.app.handler") == [
        allow("s3:GetObject", f"<{ids['bucket']}.Arn>/plans/*"),
        allow("s3:GetObject", sources),
        # CopyObject decrypts an SSE-KMS source with the caller's permissions; the SSE-S3 copy needs no key.
        *source_key_statements(synthesized),
        allow("s3:PutObject", f"<{ids['bucket']}.Arn>/dags/*"),
    ]


def deploy_bucket_statements(bucket_id: str) -> list[dict]:
    return [
        allow("s3:ListBucket", f"<{bucket_id}.Arn>", Condition=DAGS_PREFIX_ONLY),
        allow("s3:GetObject", [f"<{bucket_id}.Arn>/dags/*", f"<{bucket_id}.Arn>/archives/*"]),
        # The archive of each repo it read object by object.
        allow("s3:PutObject", f"<{bucket_id}.Arn>/archives/*"),
        # What is live: recorded from the execution's plan, written only under manifests/; read by a deferred
        # execution back to ship, whose change a ship may have carried meanwhile.
        allow("s3:GetObject", [f"<{bucket_id}.Arn>/plans/*", f"<{bucket_id}.Arn>/manifests/*"]),
        allow("s3:PutObject", f"<{bucket_id}.Arn>/manifests/*"),
    ]


def test_deploy_reads_dags_archives_and_its_secret_writes_archives_and_records_what_is_live(synthesized, ids):
    assert function_statements(synthesized, "functions.deploy.app.handler") == [
        *deploy_bucket_statements(ids["bucket"]),
        # The deferred changes a ship carries: read, then told (or marked with the failed ship); the lock handed
        # over to the ship slot (a transaction deleting the one, updating the other), and the slot ended.
        allow(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"], f"<{ids['table']}.Arn>"),
        allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], f"<{ids['secret']}>"),
        READ_ASTRO_TARGETS,
    ]


@pytest.mark.parametrize("handler", ["functions.compare.app.handler", "functions.dry_run.app.handler"])
def test_compare_and_dry_run_only_read_plans_manifests_and_listings(synthesized, ids, handler):
    assert function_statements(synthesized, handler) == [
        allow("s3:GetObject", [f"<{ids['bucket']}.Arn>/plans/*", f"<{ids['bucket']}.Arn>/manifests/*"]),
        # Unconditioned: a manifest not recorded yet (a repo never deployed) reads as 404, not 403.
        allow("s3:ListBucket", f"<{ids['bucket']}.Arn>"),
    ]


ZIP_HANDLERS = [
    "functions.parse.app.handler",
    "functions.dry_run.app.handler",
    "functions.acquire_lock.app.handler",
    "functions.compare.app.handler",
    "functions.snapshot.app.handler",
    "functions.clear_prefix.app.handler",
    "functions.upload.app.handler",
    "functions.rollback.app.handler",
    "functions.notify.app.handler",
    RECOVER_HANDLER,
    WAKE_WAITERS_HANDLER,
]


def test_a_customer_managed_secret_key_is_decrypted_only_by_deploy_through_secrets_manager(
    with_customer_managed_secret,
):
    synthesized = with_customer_managed_secret
    bucket = synthesized.output_ref("DagBucketName")
    assert function_statements(synthesized, "functions.deploy.app.handler") == [
        *deploy_bucket_statements(bucket),
        allow(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
              f"<{synthesized.output_ref('LockTableName')}.Arn>"),
        allow(
            ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            synthesized.context["astroTokenSecretArn"],
        ),
        decrypt_via("secretsmanager", "eu-west-1", synthesized.context["astroTokenSecretKmsKeyArn"]),
        READ_ASTRO_TARGETS,
    ]


@pytest.mark.parametrize("handler", ZIP_HANDLERS)
def test_without_source_keys_nothing_else_changes(synthesized, with_customer_managed_secret, handler):
    # The same statements as with source keys, less theirs: the keys add those and change nothing else.
    with_source_keys = function_statements(synthesized, handler)
    without = function_statements(with_customer_managed_secret, handler)
    source_keys = source_key_statements(synthesized)
    assert without == [statement for statement in with_source_keys if statement not in source_keys]
    assert "kms:ViaService" not in str(without)


def test_notify_reads_only_parse_reports_publishes_only_to_its_topic_and_records_only_what_it_notified(
    synthesized, ids, notified_table_id
):
    key_id = topic_key_id(synthesized, ids["topic"])
    assert function_statements(synthesized, "functions.notify.app.handler") == [
        # The report of a refused request (plans/<execution>.report.json) names who it was for.
        allow("s3:GetObject", f"<{ids['bucket']}.Arn>/plans/*"),
        allow("sns:Publish", f"<{ids['topic']}>"),
        allow(["kms:Decrypt", "kms:GenerateDataKey*"], f"<{key_id}.Arn>"),
        # powertools' idempotency record of each execution notified.
        allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
              f"<{notified_table_id}.Arn>"),
    ]


def test_status_only_reads_this_machines_executions_and_what_is_live(synthesized, ids):
    function_id = synthesized.function_id(STATUS_HANDLER)
    role_id = synthesized.role_id(function_id)
    log_group = log_group_id(synthesized, function_id)
    logging, tracing, reading, listing, manifests = synthesized.statements(role_id, rendered=False)
    assert synthesized.render([logging, tracing]) == [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], f"<{log_group}.Arn>"),
        TRACING,
    ]
    # GET /targets: the deployment's manifests, listed (a missing one reads as 404) and read, nothing else.
    assert synthesized.render([listing, manifests]) == [
        allow("s3:ListBucket", f"<{ids['bucket']}.Arn>"),
        allow("s3:GetObject", f"<{ids['bucket']}.Arn>/manifests/*"),
    ]
    assert reading["Action"] == ["states:DescribeExecution", "states:GetExecutionHistory"]
    deployed = TokenResolver({}, account=ACCOUNT, region=REGION, stack_name="AstroDagDeploy", partition=PARTITION)
    deployed.register(ids["machine"], MACHINE_ARN)
    # Execution names are known only at run time: any execution of this machine, and of no other.
    assert deployed.resolve(reading["Resource"]) == (
        f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:execution:PipelineStateMachine-AbC123:*"
    )


def test_function_roles_trust_lambda_and_carry_no_other_policies(synthesized):
    for function_id in synthesized.resources("AWS::Lambda::Function"):
        synthesized.has(
            synthesized.role_id(function_id),
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "lambda.amazonaws.com"}}]},
                "ManagedPolicyArns": Match.absent(),
                "Policies": Match.absent(),
            },
        )


def test_the_state_machine_may_invoke_only_its_tasks_functions_and_delete_only_lock_items(synthesized, ids):
    machine_role = Capture()
    synthesized.has(ids["machine"], "AWS::StepFunctions::StateMachine", {"RoleArn": {"Fn::GetAtt": [machine_role, "Arn"]}})
    statements = synthesized.statements(machine_role.as_string())
    invoked = {
        resource
        for statement in statements
        if statement["Action"] == "lambda:InvokeFunction"
        for resource in statement["Resource"]
    }
    functions = set(synthesized.resources("AWS::Lambda::Function"))
    # Recover runs in the recovery machine, the Sweeper on EventBridge's events, Status on API requests and the
    # waker on the lock table's stream.
    tasks = functions - {synthesized.function_id(handler) for handler in (RECOVER_HANDLER, STATUS_HANDLER,
                                                                          SWEEPER_HANDLER, WAKE_WAITERS_HANDLER)}
    assert len(tasks) == 10
    assert invoked == {f"<{function_id}.Arn>{suffix}" for function_id in tasks for suffix in ("", ":*")}
    dynamodb = [statement for statement in statements if "dynamodb:" in str(statement["Action"])]
    assert dynamodb == [
        allow(
            "dynamodb:DeleteItem",
            f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/<{ids['table']}>",
        )
    ]


def test_star_resources_only_where_aws_offers_nothing_narrower(synthesized):
    for policy_id, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert statement["Effect"] == "Allow"
            if "*" in resources:
                assert set(actions) <= WILDCARD_ONLY_ACTIONS, policy_id
            assert not [action for action in actions if action.endswith(":*")], policy_id


def test_the_roles_a_cross_account_source_bucket_names_are_outputs(synthesized):
    # The bucket and key policies of README (Source buckets: SSE-KMS keys and other accounts) name these two roles.
    for output, folder in (("ParseRoleArn", "parse"), ("UploadRoleArn", "upload")):
        handler = f"functions.{folder}.app.handler"
        role_id = synthesized.role_id(synthesized.function_id(handler))
        assert synthesized.output_value(output) == f"<{role_id}.Arn>"
