"""The functions: code assets, runtime, layer, environment, logs; and the Astro token secret."""

from pathlib import Path

import pytest
from aws_cdk.assertions import Capture, Match

from cdk.zip_assets import bytecode_path, runtime_version

# Handler -> the folder of functions/ its asset carries (with shared/): one folder per function.
ZIP_HANDLERS = {
    f"functions.{folder}.app.handler": folder
    for folder in (
        "parse", "dry_run", "acquire_lock", "compare", "snapshot", "clear_prefix", "upload", "rollback", "notify",
        "recover", "status", "sweeper", "wake_waiters",
    )
}
DEPLOY_COMMAND = "functions.deploy.app.handler"
COMMON_ENVIRONMENT = {"POWERTOOLS_METRICS_NAMESPACE": "AstroDagDeploy", "POWERTOOLS_LOG_LEVEL": "INFO"}
EXISTING_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:astro/api-token-AbC123"


def staged_files(directory: Path) -> set[str]:
    return {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()}


def environment(synthesized, handler: str) -> dict:
    variables = Capture()
    synthesized.has(synthesized.function_id(handler), "AWS::Lambda::Function", {"Environment": {"Variables": variables}})
    return synthesized.render(variables.as_object())


@pytest.fixture(scope="module")
def refs(synthesized, notified_table_id) -> dict[str, str]:
    outputs = {
        "bucket": "DagBucketName",
        "table": "LockTableName",
        "topic": "FailureTopicArn",
        "secret": "AstroTokenSecretArn",
        "machine": "StateMachineArn",
        "recovery": "RecoveryStateMachineArn",
    }
    return {**{name: f"<{synthesized.output_ref(output)}>" for name, output in outputs.items()},
            "notified": f"<{notified_table_id}>"}


def test_every_function_is_one_of_the_known_handlers(synthesized):
    functions = synthesized.resources("AWS::Lambda::Function")
    assert sorted(synthesized.function_id(handler) for handler in [*ZIP_HANDLERS, DEPLOY_COMMAND]) == sorted(functions)


@pytest.mark.parametrize("handler", ZIP_HANDLERS)
def test_zip_functions_carry_only_their_step_and_shared(synthesized, handler):
    step = ZIP_HANDLERS[handler]
    key = Capture(Match.string_like_regexp(r"^[0-9a-f]{64}\.zip$"))
    synthesized.has(synthesized.function_id(handler), "AWS::Lambda::Function", {"Code": {"S3Key": key}})
    source = synthesized.assets_manifest()["files"][key.as_string().removesuffix(".zip")]["source"]
    assert source["packaging"] == "zip"
    files = staged_files(synthesized.directory / source["path"])
    sources = {name for name in files if name.endswith(".py")}
    assert f"functions/{step}/app.py" in sources and "functions/shared/models.py" in sources
    assert {name.rsplit("/", 1)[0].split("/")[:2][-1] for name in sources} == {"functions", step, "shared"}
    assert "functions/__init__.py" in sources
    # Each module with the runtime's bytecode, and no other bytecode (none of the checkout's own).
    assert files - sources == {bytecode_path(Path(name), runtime_version()).as_posix() for name in sources}


def test_deploy_image_is_built_from_deploy_and_shared_only(synthesized):
    image_uri = Capture()
    synthesized.has(
        synthesized.function_id(DEPLOY_COMMAND), "AWS::Lambda::Function", {"Code": {"ImageUri": {"Fn::Sub": image_uri}}}
    )
    source = synthesized.assets_manifest()["dockerImages"][image_uri.as_string().rsplit(":", 1)[1]]["source"]
    assert source["dockerFile"] == "functions/deploy/Dockerfile"
    assert source["platform"] == "linux/amd64"
    files = staged_files(synthesized.directory / source["directory"])
    assert {"functions/__init__.py", "functions/deploy/Dockerfile", "functions/deploy/app.py",
            "functions/shared/models.py"} <= files
    assert {name.rsplit("/", 1)[0].split("/")[:2][-1] for name in files} == {"functions", "deploy", "shared"}


@pytest.mark.parametrize("handler", ZIP_HANDLERS)
def test_zip_functions_run_python_312_on_x86_with_the_pinned_powertools_layer(synthesized, handler):
    layer = Capture()
    synthesized.has(
        synthesized.function_id(handler),
        "AWS::Lambda::Function",
        {"Handler": handler, "Runtime": "python3.12", "Architectures": ["x86_64"], "Layers": [{"Ref": layer}]},
    )
    version = synthesized.context["powertoolsVersion"]
    synthesized.template.has_parameter(
        layer.as_string(),
        {
            "Type": "AWS::SSM::Parameter::Value<String>",
            "Default": f"/aws/service/powertools/python/x86_64/python3.12/{version}",
        },
    )


def test_deploy_is_an_image_function_sized_for_bundles(synthesized):
    storage = Capture()
    synthesized.has(
        synthesized.function_id(DEPLOY_COMMAND),
        "AWS::Lambda::Function",
        {
            "PackageType": "Image",
            "ImageConfig": Match.exact({"Command": [DEPLOY_COMMAND]}),
            "Architectures": ["x86_64"],
            "MemorySize": 2048,
            "EphemeralStorage": {"Size": storage},
            "Timeout": synthesized.context["deployTimeoutSeconds"],
        },
    )
    assert storage.as_number() >= 2048


def test_the_status_function_is_sized_for_one_api_request(synthesized):
    synthesized.has(
        synthesized.function_id("functions.status.app.handler"),
        "AWS::Lambda::Function",
        {"MemorySize": 256, "Timeout": 30},
    )


def test_environments_are_exactly_the_contract(synthesized, refs):
    # Where the astroDeployments entries are (tests/cdk/test_astro_targets.py: exactly the configured ones).
    targets = "/astro-dag-deploy/AstroDagDeployTest/astro-deployments/"
    execution_timeout_seconds = synthesized.context["executionTimeoutMinutes"] * 60
    # A lease outlives the execution holding it, its longest invocation in flight (Init phase included: 10 s) and
    # the wait for its recovery (the next sweep, every 10 minutes by default), plus 5 minutes.
    lease_seconds = execution_timeout_seconds + max(synthesized.context["deployTimeoutSeconds"], 600) + 10 + 600 + 300
    expected = {
        "functions.parse.app.handler": {
            "DAG_BUCKET": refs["bucket"],
            "SOURCE_BUCKETS": "ci-artifacts-a,ci-artifacts-b",
            # Half of what the kept bundles leave of the Deploy function's ephemeral storage: (4 - 0.5) / 2 GiB.
            "BUNDLE_LIMIT_BYTES": str(7 * 1024**3 // 4),
            "ASTRO_TARGETS_PATH": targets,
        },
        "functions.acquire_lock.app.handler": {
            "LOCK_TABLE": refs["table"],
            "LOCK_LEASE_SECONDS": str(lease_seconds),
            "LOCK_MAX_WAIT_SECONDS": str(synthesized.context["lockMaxWaitMinutes"] * 60),
        },
        "functions.dry_run.app.handler": {"DAG_BUCKET": refs["bucket"]},
        "functions.compare.app.handler": {"DAG_BUCKET": refs["bucket"]},
        "functions.snapshot.app.handler": {"DAG_BUCKET": refs["bucket"]},
        "functions.clear_prefix.app.handler": {"DAG_BUCKET": refs["bucket"]},
        "functions.upload.app.handler": {"DAG_BUCKET": refs["bucket"]},
        # Ends the execution's ship slot once the repo is back.
        "functions.rollback.app.handler": {"DAG_BUCKET": refs["bucket"], "LOCK_TABLE": refs["table"]},
        "functions.notify.app.handler": {"TOPIC_ARN": refs["topic"], "DAG_BUCKET": refs["bucket"],
                                         "NOTIFIED_TABLE": refs["notified"]},
        # Renews the stopped execution's lease before it restores.
        "functions.recover.app.handler": {
            "DAG_BUCKET": refs["bucket"],
            "LOCK_TABLE": refs["table"],
            "LOCK_LEASE_SECONDS": str(lease_seconds),
        },
        "functions.sweeper.app.handler": {
            "PIPELINE_STATE_MACHINE_ARN": refs["machine"],
            "RECOVERY_STATE_MACHINE_ARN": refs["recovery"],
            "DEPLOY_FUNCTION_ARN": f"<{synthesized.function_id(DEPLOY_COMMAND)}.Arn>",
            "LOCK_TABLE": refs["table"],
        },
        # The status API reads this machine's executions, and what is live from the DAG bucket.
        "functions.status.app.handler": {"STATE_MACHINE_ARN": refs["machine"], "DAG_BUCKET": refs["bucket"]},
        DEPLOY_COMMAND: {
            "DAG_BUCKET": refs["bucket"],
            "ASTRO_TARGETS_PATH": targets,
            "ASTRO_TOKEN_SECRET_ARN": refs["secret"],
            "ASTRO_CLI": "/usr/local/bin/astro",
            # The deployment's ships item: the deferred changes a ship carries; the lock handed over to the ship slot
            # with the lock's lease.
            "LOCK_TABLE": refs["table"],
            "LOCK_LEASE_SECONDS": str(lease_seconds),
            # An eighth of its ephemeral storage for the bundles kept for the next ships.
            "KEPT_BUNDLES_BYTES": str(512 * 1024**2),
        },
    }
    for handler, variables in expected.items():
        actual = environment(synthesized, handler)
        assert actual == {**COMMON_ENVIRONMENT, **variables}, handler


@pytest.mark.parametrize("handler", [*ZIP_HANDLERS, DEPLOY_COMMAND])
def test_every_function_is_traced_and_logs_to_its_own_group_with_retention(synthesized, handler):
    log_group = Capture()
    synthesized.has(
        synthesized.function_id(handler),
        "AWS::Lambda::Function",
        {"TracingConfig": Match.exact({"Mode": "Active"}), "LoggingConfig": {"LogGroup": {"Ref": log_group}}},
    )
    synthesized.has(
        log_group.as_string(), "AWS::Logs::LogGroup", {"RetentionInDays": synthesized.context["logRetentionDays"]}
    )


def test_a_new_secret_is_created_for_the_token_when_none_is_configured(synthesized):
    synthesized.template.resource_count_is("AWS::SecretsManager::Secret", 1)
    synthesized.has(
        synthesized.output_ref("AstroTokenSecretArn"),
        "AWS::SecretsManager::Secret",
        {"Description": Match.string_like_regexp("replace")},
    )


@pytest.fixture(scope="module")
def with_existing_secret(synthesize_with):
    return synthesize_with(astroTokenSecretArn=EXISTING_SECRET_ARN)


def test_an_existing_secret_is_used_and_is_all_deploy_may_read(with_existing_secret):
    synthesized = with_existing_secret
    synthesized.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    assert environment(synthesized, DEPLOY_COMMAND)["ASTRO_TOKEN_SECRET_ARN"] == EXISTING_SECRET_ARN
    deploy_role = synthesized.role_id(synthesized.function_id(DEPLOY_COMMAND))
    secret_statements = [
        statement for statement in synthesized.statements(deploy_role) if "secretsmanager" in str(statement["Action"])
    ]
    assert secret_statements == [
        {
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Effect": "Allow",
            "Resource": EXISTING_SECRET_ARN,
        }
    ]
