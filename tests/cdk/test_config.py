"""cdk.json context: defaults, the example file, and clear errors for every wrong value at once."""

import json
from pathlib import Path

import pytest

from cdk.app import CDK_JSON, cdk_json_context
from cdk.config import CONTEXT_KEYS, AlarmSettings, SettingsError, StackSettings
from functions.shared.astro_targets import resolve_astro_target

MINIMAL = {"sourceBuckets": ["ci-artifacts"]}
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:astro-token-AbC123"
ALIAS_ARN = "arn:aws:kms:eu-west-1:123456789012:alias/ci-artifacts"
NOT_A_KEY = "is not the complete ARN of a KMS key"


def refusal_of(astro_deployments: dict) -> str:
    """The message `cdk synth` refuses these astroDeployments entries with."""
    with pytest.raises(SettingsError) as raised:
        StackSettings.from_context({**MINIMAL, "astroDeployments": astro_deployments})
    return str(raised.value)


def test_cdk_json_runs_the_app_and_sets_every_context_key():
    assert json.loads(Path(CDK_JSON).read_text())["app"] == "python -m cdk.app"
    context = cdk_json_context()
    assert set(CONTEXT_KEYS) <= set(context)
    settings = StackSettings.from_context(context)
    assert settings.source_buckets == ("my-company-ci-artifacts",)
    assert settings.powertools_version == "3.37.0"


def test_missing_keys_take_the_defaults():
    settings = StackSettings.from_context(MINIMAL)
    assert settings == StackSettings(source_buckets=("ci-artifacts",))
    assert settings.stack_name == "AstroDagDeploy"
    assert settings.astro_token_secret_arn is None
    assert (settings.astro_token_secret_kms_key_arn, settings.source_kms_key_arns) == (None, ())
    assert (settings.execution_timeout_minutes, settings.deploy_timeout_seconds) == (375, 600)
    assert (settings.log_retention_days, settings.noncurrent_version_days) == (30, 30)
    assert settings.lock_max_wait_minutes == 20
    # A lease outlives any execution, its longest invocation in flight (Upload's 600 s or Deploy's, and Lambda's 10 s
    # Init phase) and the next sweep (every 10 minutes), with 5 minutes to spare.
    assert (settings.recovery_sweep_minutes, settings.step_timeouts_seconds) == (10, {})
    assert settings.lock_lease_seconds == 375 * 60 + 610 + 600 + 300
    assert settings.email_notifications is True
    assert settings.alarms == AlarmSettings(
        enabled=True, failed_executions=1, timed_out_executions=1, api_5xx=1, failed_deploys=True
    )


def test_alarm_thresholds_are_read_and_false_turns_one_off():
    settings = StackSettings.from_context(
        {**MINIMAL, "alarms": {"failedExecutions": 5, "api5xx": False, "failedDeploys": False}}
    )
    assert settings.alarms == AlarmSettings(
        enabled=True, failed_executions=5, timed_out_executions=1, api_5xx=None, failed_deploys=False
    )


def test_customer_managed_keys_are_read():
    multi_region_key = "arn:aws-cn:kms:cn-north-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    settings = StackSettings.from_context(
        {
            **MINIMAL,
            "sourceKmsKeyArns": [KEY_ARN, multi_region_key],
            "astroTokenSecretArn": SECRET_ARN,
            "astroTokenSecretKmsKeyArn": KEY_ARN,
        }
    )
    assert settings.source_kms_key_arns == (KEY_ARN, multi_region_key)
    assert settings.astro_token_secret_kms_key_arn == KEY_ARN
    assert StackSettings.from_context({**MINIMAL, "sourceKmsKeyArns": f'["{KEY_ARN}"]'}).source_kms_key_arns == (
        KEY_ARN,
    )


def test_command_line_strings_are_read_like_json():
    # `cdk -c key=value` passes every value as a string.
    settings = StackSettings.from_context(
        {
            "sourceBuckets": '["bucket-a", "bucket-b"]',
            "astroDeployments": '{"*/*": {"deploymentId": "dep-{deployment}"}}',
            "deployTimeoutSeconds": "300",
            "lockMaxWaitMinutes": "10",
            "emailNotifications": "false",
            "alarms": '{"enabled": false}',
        }
    )
    assert settings.source_buckets == ("bucket-a", "bucket-b")
    assert settings.deploy_timeout_seconds == 300
    assert settings.lock_max_wait_minutes == 10
    assert settings.email_notifications is False
    assert settings.alarms.enabled is False
    assert settings.astro_deployments == {"*/*": {"deploymentId": "dep-{deployment}"}}


def test_every_problem_is_reported_at_once_with_its_key():
    with pytest.raises(SettingsError) as raised:
        StackSettings.from_context(
            {
                "stackName": "1-starts-with-a-digit",
                "sourceBuckets": ["Not_A_Bucket"],
                "notifyEmails": ["not-an-email"],
                "astroDeployments": {"too/many/parts": {"deploymentId": "x"}, "ws/dep": {"workspaceId": "w"}},
                "astroTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:astrotoken",
                "astroTokenSecretKmsKeyArn": "alias/astro-token",
                "sourceKmsKeyArns": [KEY_ARN, "arn:aws:kms:eu-west-1:123456789012:key/*"],
                "powertoolsVersion": "latest",
                "executionTimeoutMinutes": 0,
                "deployTimeoutSeconds": 901,
                "logRetentionDays": 4,
                "noncurrentVersionDays": "soon",
                "lockMaxWaitMinutes": -1,
                "emailNotifications": 1,
                "alarms": {"enabled": "yes"},
            }
        )
    keys = [problem.split(":", 1)[0] for problem in raised.value.problems]
    assert sorted(keys) == sorted(
        [
            "stackName",
            "sourceBuckets",
            "notifyEmails",
            "astroDeployments",
            "astroDeployments",
            "astroTokenSecretArn",
            "astroTokenSecretKmsKeyArn",
            "sourceKmsKeyArns",
            "powertoolsVersion",
            "executionTimeoutMinutes",
            "deployTimeoutSeconds",
            "logRetentionDays",
            "noncurrentVersionDays",
            "lockMaxWaitMinutes",
            "emailNotifications",
            "alarms.enabled",
        ]
    )
    assert "'Not_A_Bucket' is not an S3 bucket name" in str(raised.value)
    assert "6-character suffix" in str(raised.value)


@pytest.mark.parametrize(
    "context, message",
    [
        ({"sourceBuckets": []}, "sourceBuckets: list at least one"),
        ({"sourceBuckets": "bucket-a"}, "sourceBuckets: 'bucket-a' is not valid JSON"),
        ({"sourceBuckets": ["bucket-a", "bucket-a"]}, "sourceBuckets: lists a name twice"),
        ({"astroDeployments": {"ws/dep": {"deploymentId": "{repo}"}}}, "placeholders"),
        ({"astroDeployments": {"ws/dep": {"deploymentId": "d", "region": "eu"}}},
         "may hold only deploymentId, workspaceId, dagBundles, createBundles, bundleNames, installedPackages"),
        ({"executionTimeoutMinutes": 10}, "leaves no time for the steps before Deploy"),
        ({"logRetentionDays": True}, "logRetentionDays: True is not a whole number"),
        ({"lockMaxWaitMinutes": 375}, "lockMaxWaitMinutes: 375 minutes of waiting for the deployment's lock must be"),
        ({"emailNotifications": "maybe"}, "emailNotifications: 'maybe' is not valid JSON"),
        ({"alarms": ["failedExecutions"]}, "alarms: expected dict, got list"),
        ({"alarms": {"failedExecution": 1}}, "alarms: unknown keys failedExecution"),
        ({"alarms": {"api5xx": 0}}, "alarms.api5xx: 0 is neither a threshold from 1 to 10000 nor false (off)"),
        ({"alarms": {"timedOutExecutions": True}}, "alarms.timedOutExecutions: True is neither a threshold"),
        ({"alarms": {"failedDeploys": 1}}, "alarms.failedDeploys: 1 is not true or false"),
        ({"sourceKmsKeyArns": [ALIAS_ARN]}, f"sourceKmsKeyArns: '{ALIAS_ARN}' {NOT_A_KEY}"),
        ({"sourceKmsKeyArns": ["arn:aws:kms:*:123456789012:key/*"]}, NOT_A_KEY),
        ({"sourceKmsKeyArns": ["1234abcd-12ab-34cd-56ef-1234567890ab"]}, NOT_A_KEY),
        ({"sourceKmsKeyArns": [KEY_ARN.upper()]}, NOT_A_KEY),
        ({"sourceKmsKeyArns": KEY_ARN}, f"sourceKmsKeyArns: {KEY_ARN[:80]!r} is not valid JSON"),
        ({"sourceKmsKeyArns": [KEY_ARN, KEY_ARN]}, "sourceKmsKeyArns: lists a name twice"),
        ({"astroTokenSecretKmsKeyArn": f"{KEY_ARN}*"}, f"astroTokenSecretKmsKeyArn: '{KEY_ARN}*' {NOT_A_KEY}"),
        ({"astroTokenSecretKmsKeyArn": KEY_ARN},
         "astroTokenSecretKmsKeyArn: names the key of an existing secret, but astroTokenSecretArn is not set"),
        ({"astroTokenSecretArn": SECRET_ARN, "astroTokenSecretKmsKeyArn": KEY_ARN.replace("eu-west-1", "us-east-1")},
         "astroTokenSecretKmsKeyArn: the key is in aws:us-east-1, the secret in aws:eu-west-1"),
    ],
)
def test_wrong_values_are_explained(context, message):
    with pytest.raises(SettingsError, match="invalid cdk.json context") as raised:
        StackSettings.from_context({**MINIMAL, **context})
    assert message in str(raised.value)


def test_dag_bundle_settings_of_a_deployment_are_checked_all_at_once():
    entries = {
        "a/per-repo": {"deploymentId": "d1", "dagBundles": "per-repo", "createBundles": False,
                       "bundleNames": {"marketing.etl": "marketing", "finance": "finance-2"}},
        "a/bad-mode": {"deploymentId": "d2", "dagBundles": "per-team"},
        "a/bad-names": {"deploymentId": "d3", "dagBundles": "per-repo", "createBundles": "yes",
                        "bundleNames": {"x": "main", "y": "Upper", "../z": "ok", "p": "same", "q": "same"}},
        "a/names-in-main-mode": {"deploymentId": "d4", "bundleNames": {"x": "x"}},
    }
    message = refusal_of(entries)
    assert "'a/bad-mode' dagBundles 'per-team' is not one of main, per-repo" in message
    assert "'a/bad-names' createBundles must be true or false" in message
    assert "'a/bad-names' bundleNames: 'main' is not 1-32 characters from a-z 0-9 - _, and not 'main'" in message
    assert "'a/bad-names' bundleNames: 'Upper' is not" in message
    assert "'a/bad-names' bundleNames: '../z' is not a repo name" in message
    assert "'a/bad-names' bundleNames: repos p, q all ship to bundle 'same'" in message
    assert """'a/names-in-main-mode' bundleNames needs "dagBundles": "per-repo\"""" in message
    assert "a/per-repo" not in message
    assert StackSettings.from_context({**MINIMAL, "astroDeployments": {"a/per-repo": entries["a/per-repo"]}})


def test_step_timeouts_and_the_sweep_interval_are_read_and_checked():
    settings = StackSettings.from_context({**MINIMAL, "stepTimeoutsSeconds": {"Upload": 900, "Snapshot": 20},
                                           "recoverySweepMinutes": 5})
    assert (settings.step_timeout_seconds("Upload"), settings.step_timeout_seconds("Parse")) == (900, 300)
    assert settings.lock_lease_seconds == 375 * 60 + 910 + 300 + 300
    with pytest.raises(SettingsError) as refused:
        StackSettings.from_context({**MINIMAL, "stepTimeoutsSeconds": {"Deploy": 60, "Upload": 0},
                                    "recoverySweepMinutes": 0})
    assert refused.value.problems == [
        "stepTimeoutsSeconds: unknown step 'Deploy' (known: Parse, AcquireLock, Snapshot, ClearPrefix, Upload, "
        "Rollback, Notify, Recover; Deploy's is deployTimeoutSeconds)",
        "stepTimeoutsSeconds.Upload: 0 is not a whole number from 1 to 900",
        "recoverySweepMinutes: 0 is not a whole number from 1 to 1440",
    ]


def test_installed_packages_are_top_level_module_names():
    entries = {
        "a/good": {"deploymentId": "d1", "installedPackages": ["pandas", "yaml"]},
        "a/distribution-names": {"deploymentId": "d2", "installedPackages": ["PyYAML", "apache-airflow-providers-x"]},
        "a/not-a-list": {"deploymentId": "d3", "installedPackages": "pandas"},
        "a/twice": {"deploymentId": "d4", "installedPackages": ["pandas", "pandas"]},
    }
    message = refusal_of(entries)
    assert "'a/distribution-names' installedPackages: 'apache-airflow-providers-x' is not a top-level module" in message
    assert "'a/not-a-list' installedPackages must list module names" in message
    assert "'a/twice' installedPackages lists a module twice" in message
    assert "a/good" not in message and "'PyYAML'" not in message
    settings = StackSettings.from_context({**MINIMAL, "astroDeployments": {"a/good": entries["a/good"]}})
    stored = {key: json.loads(value) for key, value in settings.astro_target_values().items()}
    assert resolve_astro_target("a", "good", stored).installed_packages == {"pandas", "yaml"}
    assert resolve_astro_target("a", "good", {"*/*": {"deploymentId": "d"}}).installed_packages is None
