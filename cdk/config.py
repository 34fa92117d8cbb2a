"""The stack's settings: cdk.json context, checked before anything is built.

Every problem is reported at once, naming the context key and what it must look like, so that a wrong
cdk.json fails `cdk synth` with a message instead of a half-built template.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import aws_logs as logs

from functions.shared.astro_targets import CONTEXT_KEY as ASTRO_DEPLOYMENTS_KEY
from functions.shared.astro_targets import DEPLOYMENT_ENTRY_KEYS
from functions.shared.dag_bundles import BUNDLE_NAME_RULE, MAIN_MODE, MODES, PER_REPO_MODE, is_bundle_name
from functions.shared.paths import SEGMENT_RULE, is_segment

# CloudWatch Logs accepts only these retention periods.
RETENTION_DAYS = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
LAMBDA_MAX_TIMEOUT_SECONDS = 900
STANDARD_MAX_EXECUTION_MINUTES = 365 * 24 * 60
MAX_NONCURRENT_VERSION_DAYS = 36500
# Beyond the execution timeout: Step Functions stops a timed-out execution a little after the deadline.
LOCK_LEASE_MARGIN_SECONDS = 300
# What one SSM parameter holds (cdk/astro_targets.py stores each astroDeployments entry in one): a standard one
# 4 KB, an advanced one (charged monthly) 8 KB.
STANDARD_PARAMETER_BYTES = 4096
ADVANCED_PARAMETER_BYTES = 8192
# One resource per entry, in a stack CloudFormation caps at 500 resources (about 90 are the pipeline's own).
MAX_ASTRO_DEPLOYMENTS = 350

# Lambda's Init phase, before a function's timeout starts counting (functions/sweeper/recovery_start.py).
LAMBDA_INIT_SECONDS = 10
# The zip steps whose function timeout `stepTimeoutsSeconds` may set, with their defaults (Deploy has its own key).
STEP_TIMEOUT_DEFAULTS = {
    "Parse": 300, "AcquireLock": 60, "Snapshot": 300, "ClearPrefix": 300, "Upload": 600, "Rollback": 600,
    "Notify": 60, "Recover": 600,
}
MAX_SWEEP_MINUTES = 24 * 60

CONTEXT_KEYS = (
    "stackName",
    "sourceBuckets",
    "notifyEmails",
    ASTRO_DEPLOYMENTS_KEY,
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
    "alarms",
    "stepTimeoutsSeconds",
    "recoverySweepMinutes",
)


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    description: str

    def allows(self, value: object) -> bool:
        return isinstance(value, str) and bool(self.pattern.fullmatch(value))


_STACK_NAME = _Rule(
    re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}"), "a stack name (letters, digits and -, starting with a letter)"
)
_BUCKET_NAME = _Rule(re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"), "an S3 bucket name")
_EMAIL = _Rule(re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"), "an email address")
# The complete ARN, with the 6-character suffix Secrets Manager adds to the name: IAM grants need it.
_SECRET_ARN = _Rule(
    re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}"),
    "the complete ARN of a Secrets Manager secret (ending with its 6-character suffix)",
)
# A key ARN, not an alias: IAM authorizes kms:Decrypt by the key's ARN, whichever name the caller used.
_KMS_KEY_ARN = _Rule(
    re.compile(
        r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/"
        r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
    ),
    "the complete ARN of a KMS key (arn:<partition>:kms:<region>:<account>:key/<key id>; no alias, no wildcard)",
)
_VERSION = _Rule(re.compile(r"\d+\.\d+\.\d+"), "a version like 3.37.0")


@dataclass(frozen=True)
class AlarmSettings:
    """Which alarms notify the failure topic, and from how many events in one period."""

    enabled: bool = True
    # Executions (or 5xx answers) in one period that raise the alarm; None turns that alarm off.
    failed_executions: int | None = 1
    timed_out_executions: int | None = 1
    api_5xx: int | None = 1
    # Any failed Deploy attempt, retried ones included: Astro trouble shows before executions fail.
    failed_deploys: bool = True


ALARM_KEYS = {
    "enabled": "enabled",
    "failedExecutions": "failed_executions",
    "timedOutExecutions": "timed_out_executions",
    "api5xx": "api_5xx",
    "failedDeploys": "failed_deploys",
}
MAX_ALARM_THRESHOLD = 10000


class SettingsError(ValueError):
    """cdk.json context that cannot build a working stack; the message lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid cdk.json context:\n" + "\n".join(f"  - {problem}" for problem in problems))


@dataclass(frozen=True)
class StackSettings:
    stack_name: str = "AstroDagDeploy"
    source_buckets: tuple[str, ...] = ()
    notify_emails: tuple[str, ...] = ()
    astro_deployments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    astro_token_secret_arn: str | None = None
    # The customer-managed key of that existing secret; None: the secret uses aws/secretsmanager.
    astro_token_secret_kms_key_arn: str | None = None
    # Customer-managed keys of SSE-KMS source objects, which Parse and Upload may decrypt through S3.
    source_kms_key_arns: tuple[str, ...] = ()
    powertools_version: str = "3.37.0"
    execution_timeout_minutes: int = 375
    deploy_timeout_seconds: int = 600
    log_retention_days: int = 30
    noncurrent_version_days: int = 30
    lock_max_wait_minutes: int = 20
    email_notifications: bool = True
    alarms: AlarmSettings = AlarmSettings()
    # Function timeouts of the zip steps that differ from STEP_TIMEOUT_DEFAULTS.
    step_timeouts_seconds: Mapping[str, int] = field(default_factory=dict)
    recovery_sweep_minutes: int = 10

    def step_timeout_seconds(self, step: str) -> int:
        return self.step_timeouts_seconds.get(step, STEP_TIMEOUT_DEFAULTS[step])

    @property
    def longest_invocation_seconds(self) -> int:
        """The longest any pipeline function's invocation can run, its Init phase included."""
        return max(self.deploy_timeout_seconds, *map(self.step_timeout_seconds, STEP_TIMEOUT_DEFAULTS)) \
            + LAMBDA_INIT_SECONDS

    @property
    def lock_lease_seconds(self) -> int:
        """A lease outlives any execution holding it, the invocation still in flight at its end and the time until
        its recovery starts (the next sweep, if the status event is lost), which renews it: a vanished holder
        blocks others at most this long, and no other execution deploys before the recovery has put its prefix
        back."""
        return (self.execution_timeout_minutes * 60 + self.longest_invocation_seconds
                + self.recovery_sweep_minutes * 60 + LOCK_LEASE_MARGIN_SECONDS)

    @property
    def astro_targets_path(self) -> str:
        """The SSM path of the astroDeployments entries (functions.shared.astro_targets reads them there).

        Under a fixed first level: SSM refuses names starting with "aws" or "ssm", which a stack name may.
        """
        return f"/astro-dag-deploy/{self.stack_name}/astro-deployments/"

    def astro_target_values(self) -> dict[str, str]:
        """Each astroDeployments entry as the JSON its SSM parameter holds."""
        return {key: astro_target_value(entry) for key, entry in sorted(self.astro_deployments.items())}

    @property
    def log_retention(self) -> logs.RetentionDays:
        return RETENTION_DAYS[self.log_retention_days]

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> "StackSettings":
        """Read the context keys (missing or null keys take the defaults) and validate them."""
        reader = _ContextReader(context)
        defaults = cls()
        settings = cls(
            stack_name=reader.text("stackName", _STACK_NAME) or defaults.stack_name,
            source_buckets=reader.names("sourceBuckets", _BUCKET_NAME, required=True),
            notify_emails=reader.names("notifyEmails", _EMAIL),
            astro_deployments=reader.astro_deployments(),
            astro_token_secret_arn=reader.text("astroTokenSecretArn", _SECRET_ARN),
            astro_token_secret_kms_key_arn=reader.text("astroTokenSecretKmsKeyArn", _KMS_KEY_ARN),
            source_kms_key_arns=reader.names("sourceKmsKeyArns", _KMS_KEY_ARN),
            powertools_version=reader.text("powertoolsVersion", _VERSION) or defaults.powertools_version,
            execution_timeout_minutes=reader.integer(
                "executionTimeoutMinutes", defaults.execution_timeout_minutes, STANDARD_MAX_EXECUTION_MINUTES
            ),
            deploy_timeout_seconds=reader.integer(
                "deployTimeoutSeconds", defaults.deploy_timeout_seconds, LAMBDA_MAX_TIMEOUT_SECONDS
            ),
            log_retention_days=reader.integer("logRetentionDays", defaults.log_retention_days, max(RETENTION_DAYS)),
            noncurrent_version_days=reader.integer(
                "noncurrentVersionDays", defaults.noncurrent_version_days, MAX_NONCURRENT_VERSION_DAYS
            ),
            lock_max_wait_minutes=reader.integer(
                "lockMaxWaitMinutes", defaults.lock_max_wait_minutes, STANDARD_MAX_EXECUTION_MINUTES
            ),
            email_notifications=reader.boolean("emailNotifications", defaults.email_notifications),
            alarms=reader.alarms(),
            step_timeouts_seconds=reader.step_timeouts(),
            recovery_sweep_minutes=reader.integer(
                "recoverySweepMinutes", defaults.recovery_sweep_minutes, MAX_SWEEP_MINUTES
            ),
        )
        problems = reader.problems
        if settings.log_retention_days not in RETENTION_DAYS:
            problems.append(
                f"logRetentionDays: {settings.log_retention_days} is not a CloudWatch Logs retention period "
                f"(one of {', '.join(map(str, RETENTION_DAYS))})"
            )
        if settings.execution_timeout_minutes * 60 <= settings.deploy_timeout_seconds:
            problems.append(
                f"executionTimeoutMinutes: {settings.execution_timeout_minutes} minutes leaves no time for the steps "
                f"before Deploy (deployTimeoutSeconds is {settings.deploy_timeout_seconds})"
            )
        if settings.lock_max_wait_minutes >= settings.execution_timeout_minutes:
            problems.append(
                f"lockMaxWaitMinutes: {settings.lock_max_wait_minutes} minutes of waiting for the deployment's lock "
                f"must be shorter than executionTimeoutMinutes ({settings.execution_timeout_minutes})"
            )
        problems.extend(_token_secret_key_problems(reader, settings))
        if problems:
            raise SettingsError(problems)
        return settings


def astro_target_value(entry: Mapping[str, Any]) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def arn_partition_and_region(arn: str) -> tuple[str, str]:
    _, partition, _, region, *_ = arn.split(":")
    return partition, region


def _token_secret_key_problems(reader: "_ContextReader", settings: StackSettings) -> list[str]:
    key, secret = settings.astro_token_secret_kms_key_arn, settings.astro_token_secret_arn
    if key and not secret and not reader.has("astroTokenSecretArn"):
        return ["astroTokenSecretKmsKeyArn: names the key of an existing secret, but astroTokenSecretArn is not set"]
    # Secrets Manager encrypts a secret only with a key of the secret's own Region.
    if key and secret and arn_partition_and_region(key) != arn_partition_and_region(secret):
        return [
            f"astroTokenSecretKmsKeyArn: the key is in {':'.join(arn_partition_and_region(key))}, the secret in "
            f"{':'.join(arn_partition_and_region(secret))}: Secrets Manager needs a key of the secret's Region"
        ]
    return []


class _ContextReader:
    """Reads one key at a time, collecting problems instead of stopping at the first.

    `cdk -c key=value` hands every value over as a string: numbers and JSON lists/objects are accepted in that form.
    """

    def __init__(self, context: Mapping[str, Any]):
        self._context = context
        self.problems: list[str] = []

    def _decoded(self, key: str, expected: type) -> Any:
        value = self._context.get(key)
        if isinstance(value, str) and expected is not str:
            try:
                value = json.loads(value)
            except ValueError:
                self.problems.append(f"{key}: {value[:80]!r} is not valid JSON")
                return None
        if value is not None and not isinstance(value, expected):
            self.problems.append(f"{key}: expected {expected.__name__}, got {type(value).__name__}")
            return None
        return value

    def has(self, key: str) -> bool:
        return self._context.get(key) not in (None, "")

    def text(self, key: str, rule: _Rule) -> str | None:
        value = self._context.get(key)
        if value is None or value == "":
            return None
        if not rule.allows(value):
            self.problems.append(f"{key}: {value!r} is not {rule.description}")
            return None
        return value

    def integer(self, key: str, default: int, maximum: int) -> int:
        value = self._context.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
            self.problems.append(f"{key}: {value!r} is not a whole number from 1 to {maximum}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._decoded(key, bool)
        return default if value is None else value

    def alarms(self) -> AlarmSettings:
        """`alarms`: {"enabled": bool, "failedExecutions"/"timedOutExecutions"/"api5xx": threshold or false,
        "failedDeploys": bool}; missing keys take the defaults."""
        key = "alarms"
        mapping = self._decoded(key, dict) or {}
        defaults = AlarmSettings()
        unknown = sorted(set(mapping) - set(ALARM_KEYS))
        if unknown:
            self.problems.append(f"{key}: unknown keys {', '.join(unknown)} (known: {', '.join(ALARM_KEYS)})")
        values = {}
        for name, attribute in ALARM_KEYS.items():
            value = mapping.get(name)
            default = getattr(defaults, attribute)
            if value is None:
                values[attribute] = default
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    self.problems.append(f"{key}.{name}: {value!r} is not true or false")
                values[attribute] = value if isinstance(value, bool) else default
            elif value is False:
                values[attribute] = None
            elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ALARM_THRESHOLD:
                self.problems.append(
                    f"{key}.{name}: {value!r} is neither a threshold from 1 to {MAX_ALARM_THRESHOLD} nor false (off)"
                )
                values[attribute] = default
            else:
                values[attribute] = value
        return AlarmSettings(**values)

    def step_timeouts(self) -> dict[str, int]:
        """`stepTimeoutsSeconds`: {"<step>": seconds} for the steps of STEP_TIMEOUT_DEFAULTS."""
        key = "stepTimeoutsSeconds"
        mapping = self._decoded(key, dict) or {}
        timeouts = {}
        for step, seconds in mapping.items():
            if step not in STEP_TIMEOUT_DEFAULTS:
                self.problems.append(f"{key}: unknown step {step!r} (known: {', '.join(STEP_TIMEOUT_DEFAULTS)}; "
                                     "Deploy's is deployTimeoutSeconds)")
            elif isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= LAMBDA_MAX_TIMEOUT_SECONDS:
                self.problems.append(f"{key}.{step}: {seconds!r} is not a whole number from 1 to "
                                     f"{LAMBDA_MAX_TIMEOUT_SECONDS}")
            else:
                timeouts[step] = seconds
        return timeouts

    def names(self, key: str, rule: _Rule, required: bool = False) -> tuple[str, ...]:
        values = self._decoded(key, list) or []
        for value in values:
            if not rule.allows(value):
                self.problems.append(f"{key}: {value!r} is not {rule.description}")
        if required and not values:
            self.problems.append(f"{key}: list at least one ({rule.description})")
        names = tuple(value for value in values if isinstance(value, str))
        if len(set(names)) != len(names):
            self.problems.append(f"{key}: lists a name twice")
        return names

    def astro_deployments(self) -> dict[str, dict[str, str]]:
        key = ASTRO_DEPLOYMENTS_KEY
        mapping = self._decoded(key, dict) or {}
        if len(mapping) > MAX_ASTRO_DEPLOYMENTS:
            self.problems.append(
                f"{key}: {len(mapping)} entries, at most {MAX_ASTRO_DEPLOYMENTS} (each is one CloudFormation resource, "
                "500 in a stack): let a '*' entry cover deployments whose IDs follow a pattern"
            )
        for name, entry in mapping.items():
            parts = name.split("/")
            if len(parts) != 2 or not all(part == "*" or is_segment(part) for part in parts):
                self.problems.append(
                    f"{key}: {name!r} is not '<workspace>/<deployment>' (each {SEGMENT_RULE}, or *)"
                )
            if not isinstance(entry, dict) or not entry.get("deploymentId"):
                self.problems.append(f'{key}: {name!r} needs {{"deploymentId": "<Astro deployment ID>"}}')
            elif set(entry) - set(DEPLOYMENT_ENTRY_KEYS):
                self.problems.append(f"{key}: {name!r} may hold only {', '.join(DEPLOYMENT_ENTRY_KEYS)}")
            else:
                self._check_deployment_entry(key, name, entry)
                size = len(astro_target_value(entry).encode())
                if size > ADVANCED_PARAMETER_BYTES:
                    self.problems.append(
                        f"{key}: {name!r} is {size} bytes as JSON; an entry is stored in one SSM parameter, which "
                        f"holds at most {ADVANCED_PARAMETER_BYTES}"
                    )
        return mapping

    def _check_deployment_entry(self, key: str, name: str, entry: dict) -> None:
        self._check_installed_packages(key, name, entry.get("installedPackages"))
        for field_name in ("deploymentId", "workspaceId"):
            template = entry.get(field_name)
            if field_name in entry and not _is_id_template(template):
                self.problems.append(
                    f"{key}: {name!r} {field_name} {template!r} is not a string using only the "
                    "{workspace} and {deployment} placeholders"
                )
        mode = entry.get("dagBundles", MAIN_MODE)
        if mode not in MODES:
            self.problems.append(f"{key}: {name!r} dagBundles {mode!r} is not one of {', '.join(MODES)}")
        if not isinstance(entry.get("createBundles", True), bool):
            self.problems.append(f"{key}: {name!r} createBundles must be true or false")
        bundle_names = entry.get("bundleNames", {})
        if not isinstance(bundle_names, dict):
            self.problems.append(f'{key}: {name!r} bundleNames must map repos to bundles: {{"<repo>": "<bundle>"}}')
            return
        if bundle_names and mode != PER_REPO_MODE:
            self.problems.append(f'{key}: {name!r} bundleNames needs "dagBundles": "{PER_REPO_MODE}"')
        for repo, bundle in bundle_names.items():
            if not is_segment(repo):
                self.problems.append(f"{key}: {name!r} bundleNames: {repo!r} is not a repo name ({SEGMENT_RULE})")
            if not is_bundle_name(bundle):
                self.problems.append(f"{key}: {name!r} bundleNames: {bundle!r} is not {BUNDLE_NAME_RULE}")
        shared = sorted({bundle for bundle in bundle_names.values() if list(bundle_names.values()).count(bundle) > 1})
        for bundle in shared:
            repos = sorted(repo for repo, named in bundle_names.items() if named == bundle)
            self.problems.append(f"{key}: {name!r} bundleNames: repos {', '.join(repos)} all ship to bundle {bundle!r}")


    def _check_installed_packages(self, key: str, name: str, packages: object) -> None:
        """`installedPackages`: the top-level module names importable in the deployment (Parse checks imports)."""
        if packages is None:
            return
        if not isinstance(packages, list) or not all(isinstance(package, str) for package in packages):
            self.problems.append(f'{key}: {name!r} installedPackages must list module names: ["pandas", "yaml"]')
            return
        for package in packages:
            if not package.isidentifier():
                self.problems.append(
                    f"{key}: {name!r} installedPackages: {package!r} is not a top-level module name (what `import` "
                    f"takes: yaml for PyYAML, not the distribution's name)"
                )
        if len(set(packages)) != len(packages):
            self.problems.append(f"{key}: {name!r} installedPackages lists a module twice")


def _is_id_template(template: object) -> bool:
    """What functions.shared.astro_targets.resolve_astro_target can format without failing at run time."""
    if not isinstance(template, str):
        return False
    try:
        template.format_map({"workspace": "workspace", "deployment": "deployment"})
    except (KeyError, ValueError, IndexError, AttributeError):
        return False
    return True
