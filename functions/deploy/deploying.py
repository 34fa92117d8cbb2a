"""Deploy: ship a Dag bundle to Astro with the astro CLI's DAG-only deploy: every repo of the deployment into its
`main` bundle, or, for a deployment configured per repo, the repo alone into its own bundle.

Each invocation works in a fresh folder under /tmp (warm Lambda containers keep /tmp), removed afterwards but for
its bundle, kept for the next ship of that bundle (functions/deploy/warm_bundle.py), or removed by the next
invocation if this one was stopped first (functions/deploy/work_folders.py):
    <work>/.astro/config.yaml       empty: CLIs up to v1.44 refuse a working directory without it
    <work>/home/.astro/config.yaml  the CLI's own config (HOME and ASTRO_HOME); it also writes the token there
    <work>/dags/<repo>/<path>       the main bundle (the folder's name prefixes the entries of the CLI's tarball)
    <work>/dags/<path>              a per-repo bundle (shipped with --no-dags-base-dir: the repo root is the bundle root)
"""

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from time import sleep

from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError, ClientError

from functions.deploy.astro_cli import CliRun, deployed_version, listed_bundles, run_cli
from functions.deploy.bundling import Bundle, bundle_prefix, gather_bundle
from functions.deploy.ship_record import begin_ship, record_ship
from functions.deploy.warm_bundle import claim_kept_bundle, keep_bundle
from functions.deploy.work_folders import remove_abandoned, work_folder
from functions.shared.astro_targets import AstroTarget, resolve_astro_target
from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.deferred_ships import Deferred, coalesces, note_failed_ship, read_deferred, tell_carried
from functions.shared.errors import (
    AstroConfigError, AstroDeployFailed, AstroUnavailable, BundleMissing, EmptyBundleRefused, LockLost, ShipInFlight,
)
from functions.shared.locking import current_holder
from functions.shared.manifest import record_of_execution
from functions.shared.execution_state import AstroRetry, DeployResult, RunScope, ShipDecision, ShipOutcome
from functions.shared.records import FrozenRecord
from functions.shared.ship_slot import end_ship, hand_over, ship_in_flight

TOKEN_MAX_AGE_SECONDS = 300  # a rotated token is picked up within this time
# Left between the CLI's timeout and the Lambda's deadline: to kill it, clean up and report the failure.
DEADLINE_MARGIN_SECONDS = 30
MIN_CLI_SECONDS = 1
# The function's variables the CLI needs when they are set; nothing else of the function's environment (AWS
# credentials, bucket names) reaches it.
INHERITED_VARIABLES = ("ASTRO_DOMAIN", "SSL_CERT_FILE")
# The emptiness check is ours (refuse_empty); the CLI's own prompt would read EOF from stdin and cancel.
CLI_CONFIG = "upgrade_message: false\nshow_warnings: false\n"
# The waits before each new attempt of a deploy that failed on a transient Astro error (AstroUnavailable). Deploy
# tries again itself, with the bundle it gathered: once the lock is handed over, gathering again could take in a
# repo another execution is changing.
ASTRO_RETRY_WAITS_SECONDS = (30, 60, 120)


class DeployInput(RunScope):
    """Deploy's input: the state after Upload (its "clear", "upload" and other keys are ignored)."""

    allow_empty_deployment: bool = False
    # False when a recovery re-ships a restored prefix: the execution's plan is not what Astro then receives, so
    # the bundle stays unconfirmed ("shipping") and no later request counts as unchanged until a ship confirms it.
    record_live: bool = True
    lock_key: str | None = None  # the deployment's lock, whose ships item names the deferred changes a ship carries
    ship_or_defer: ShipDecision | None = None  # present when this execution deferred its ship, then came back
    # The execution goes on under the lock after this ship (ShipDeferredChanges): the lock is not handed over.
    keeps_lock: bool = False


class DeploySettings(FrozenRecord):
    bucket: str
    token_secret_arn: str
    astro_cli: str
    path: str
    # The function's ephemeral storage (/tmp): its work folders, and the bundles kept for the next ships, which
    # together hold at most kept_bundles_bytes (none unless configured).
    storage: Path
    kept_bundles_bytes: int
    lock_table: str | None = None  # where deferred changes are recorded (functions/shared/deferred_ships.py)
    lease_seconds: int = 0  # the ship slot's lease (functions/shared/ship_slot.py): as long as the lock's
    inherited: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "DeploySettings":
        return cls(
            bucket=environ["DAG_BUCKET"],
            token_secret_arn=environ["ASTRO_TOKEN_SECRET_ARN"],
            astro_cli=environ.get("ASTRO_CLI") or "astro",
            path=environ.get("PATH") or os.defpath,
            lock_table=environ.get("LOCK_TABLE"),
            lease_seconds=int(environ["LOCK_LEASE_SECONDS"]) if environ.get("LOCK_TABLE") else 0,
            storage=Path(environ.get("EPHEMERAL_STORAGE") or tempfile.gettempdir()),
            kept_bundles_bytes=int(environ.get("KEPT_BUNDLES_BYTES") or 0),
            inherited={name: environ[name] for name in INHERITED_VARIABLES if environ.get(name)},
        )


class DeployOutcome(FrozenRecord):
    result: DeployResult  # what the state gets
    cli_output: str  # the CLI's last lines, redacted, for the log
    manifest_problem: str | None = None  # why what is live could not be recorded, or the carried executions told


def read_token(secret_arn: str) -> str:
    try:
        token = parameters.get_secret(secret_arn, max_age=TOKEN_MAX_AGE_SECONDS)
    except parameters.GetParameterError as error:
        raise AstroConfigError(f"the Astro API token cannot be read from the secret {secret_arn}: {error}") from None
    if not isinstance(token, str) or not token.strip():
        raise AstroConfigError(
            f"the secret {secret_arn} holds no Astro API token: store the token as its plain-text value"
        )
    return token.strip()


def refuse_empty(bundle: Bundle, request: DeployInput, astro_target: AstroTarget, bundle_name: str, prefix: str
                 ) -> None:
    """An empty bundle (gathered from `prefix`), or one without any .py file, would delete every DAG of the Dag
    bundle."""
    if request.allow_empty_deployment or bundle.python_files:
        return
    if bundle_name == MAIN_BUNDLE:
        removed = f"every DAG of Astro deployment {astro_target.deployment_id}"
    else:
        removed = f"every DAG of Dag bundle {bundle_name} of Astro deployment {astro_target.deployment_id}"
    counted = "1 file" if bundle.files == 1 else f"{bundle.files} files"
    held = f"{counted} but no .py file" if bundle.files else "no files"
    raise EmptyBundleRefused(
        f"{prefix} holds {held}: deploying it would remove {removed}. "
        "Send allow_empty_deployment: true to empty it on purpose"
    )


def cli_arguments(cli: str, astro_target: AstroTarget, dags: Path, description: str, bundle_name: str) -> list[str]:
    # -f: without it the CLI exits 0 without deploying on "uncommitted changes". --parse/--pytest need Docker.
    argv = [cli, "deploy", astro_target.deployment_id, "--dags", "--dags-path", str(dags), "-f", "--description",
            description]
    if astro_target.workspace_id:
        argv += ["--workspace-id", astro_target.workspace_id]
    if bundle_name != MAIN_BUNDLE:
        # The repo's root is the bundle's root, as in the repo: Airflow 3 puts it on sys.path.
        argv += ["--dag-bundle-name", bundle_name, "--no-dags-base-dir"]
    return argv


def cli_environment(settings: DeploySettings, home: Path, token: str) -> dict[str, str]:
    return {
        "PATH": settings.path,
        "HOME": str(home),
        # The same folder as HOME: one config file, whichever of the two a CLI version reads.
        "ASTRO_HOME": str(home),
        "ASTRO_API_TOKEN": token,
        "ASTRO_TELEMETRY_DISABLED": "1",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        **settings.inherited,
    }


def description(request: DeployInput) -> str:
    """What Astro's deploy history shows: the repo that triggered the deploy, its commit, the execution."""
    return " ".join(part for part in (request.repo, request.commit, request.execution) if part)


@contextlib.contextmanager
def _cli_work_folder(storage: Path) -> Iterator[Path]:
    """This invocation's work folder, ready for the CLI, in the function's storage (after removing the folders of
    invocations stopped before they could)."""
    remove_abandoned(storage)
    held = contextlib.ExitStack()
    try:
        work = held.enter_context(work_folder(storage))
        (work / ".astro").mkdir()
        (work / ".astro" / "config.yaml").touch()
        (work / "home" / ".astro").mkdir(parents=True)
        (work / "home" / ".astro" / "config.yaml").write_text(CLI_CONFIG)
    except OSError as error:
        held.close()
        raise AstroDeployFailed(
            f"the astro CLI's work folder cannot be made in {storage}: {error.strerror or error}; "
            "the deploy function needs a writable /tmp (its ephemeral storage)"
        ) from None
    with held:
        yield work


def _cli_timeout(remaining_ms: int) -> float:
    seconds = remaining_ms / 1000 - DEADLINE_MARGIN_SECONDS
    if seconds < MIN_CLI_SECONDS:
        raise AstroDeployFailed(
            f"only {remaining_ms / 1000:.0f} s were left before the Lambda's deadline, too little to run astro "
            "deploy: raise deployTimeoutSeconds in cdk.json"
        )
    return seconds


def ensure_bundle(astro_target: AstroTarget, bundle_name: str, run: Callable[[list[str]], CliRun], cli: str) -> bool:
    """Make sure the per-repo bundle exists in Astro, creating it if the configuration allows; return whether it
    was created. A creation counts only when the bundle is listed afterwards."""
    deployment_id = astro_target.deployment_id
    list_argv = [cli, "deployment", "bundle", "list", "--deployment-id", deployment_id, "--json"]
    if bundle_name in listed_bundles(run(list_argv), deployment_id=deployment_id):
        return False
    if not astro_target.create_bundles:
        raise BundleMissing(
            f"Astro deployment {deployment_id} has no Dag bundle {bundle_name} and createBundles is false in its "
            f"astroDeployments entry: create it (astro deployment bundle create --deployment-id {deployment_id} "
            f"--name {bundle_name}) or set createBundles to true"
        )
    created = run([cli, "deployment", "bundle", "create", "--deployment-id", deployment_id, "--name", bundle_name])
    if bundle_name not in listed_bundles(run(list_argv), deployment_id=deployment_id):
        raise AstroDeployFailed(
            f"astro deployment bundle create did not create Dag bundle {bundle_name} in Astro deployment "
            f"{deployment_id} (exit {created.exit_code}).\nLast lines of the astro CLI output (redacted):\n"
            f"{created.tail or '(no output)'}"
        )
    return True


def _shipped(bucket: str, request: DeployInput) -> DeployOutcome | None:
    """The ship Astro accepted that carries this execution's change, as the repo's live record names it: that ship's
    version is the result; nothing ships."""
    live = record_of_execution(bucket, request.workspace, request.deployment, request.repo, request.execution)
    if live is None:
        return None
    result = DeployResult(deployment_id=live.deployment_id, bundle=live.bundle, version=live.bundle_version,
                          files=0, bytes=0, repos=[], carried_by=live.shipped_by)
    return DeployOutcome(result=result, cli_output=f"(not run: carried by the ship of execution {live.shipped_by})")


def _check_gathering(settings: DeploySettings, request: DeployInput) -> DeployOutcome | None:
    """None if the execution may gather the deployment: it holds the lock and no other ship is in flight
    (ShipInFlight: the next ship carries its change); the ship that carried its change, if one did. Without the lock, an earlier attempt of this Deploy handed it
    over to its ship (Lambda retries an invocation that failed on the service's side, perhaps after it ran): that
    ship's outcome, if Astro accepted it; else LockLost."""
    if current_holder(settings.lock_table, request.lock_key) != request.execution:
        shipped = _shipped(settings.bucket, request)
        if shipped:
            return shipped
        raise LockLost(
            f"execution {request.execution} no longer holds the lock {request.lock_key}: an earlier attempt of this "
            "Deploy handed it over to its ship and ended without Astro's answer, or its lease ran out. Nothing was "
            "gathered; check the deployment's deploy history"
        )
    slot = ship_in_flight(settings.lock_table, request.lock_key)
    if slot and slot.holder != request.execution:
        raise ShipInFlight(
            f"the ship of execution {slot.holder} to {request.lock_key} is still uploading: this execution's change "
            "waits for the next ship"
        )
    # A deferred execution back for the lock (its wait for a ship ran out, or its wake-up was lost) whose change a
    # ship carried meanwhile.
    return _shipped(settings.bucket, request) if request.ship_or_defer and request.ship_or_defer.defer else None


def _deploy_with_retries(run_astro: Callable[[], CliRun], version_of: Callable[[CliRun], str],
                         remaining_ms: Callable[[], int]) -> tuple[CliRun, str, list[AstroRetry]]:
    """Run the deploy, and again after each of ASTRO_RETRY_WAITS_SECONDS while Astro is unavailable and the
    Lambda's deadline leaves time for the wait and another run; the attempts it was unavailable for are returned
    with the deploy (and named in the error of the last), for the console to show."""
    waits = list(ASTRO_RETRY_WAITS_SECONDS)
    retries: list[AstroRetry] = []
    while True:
        run = run_astro()
        try:
            return run, version_of(run), retries
        except AstroUnavailable as error:
            if not waits or remaining_ms() / 1000 - waits[0] - DEADLINE_MARGIN_SECONDS < MIN_CLI_SECONDS:
                if not retries:
                    raise
                waited = ", ".join(f"{retry.waited_seconds} s" for retry in retries)
                raise AstroUnavailable(f"Astro was unavailable at each of {len(retries) + 1} attempts (waits of "
                                       f"{waited} between them); the last: {error}") from error
            retries.append(AstroRetry(error=str(error).splitlines()[0], waited_seconds=waits[0]))
            sleep(waits.pop(0))


def deploy_deployment(
    request: DeployInput, settings: DeploySettings, remaining_ms: Callable[[], int]
) -> DeployOutcome:
    """Resolve the Astro target and Dag bundle, read the token, gather the bundle's files and run `astro deploy`;
    a ship of the main bundle hands the lock over to the ship slot once it has gathered."""
    # Configuration first: nothing is downloaded or run for a deployment that has no Astro ID.
    astro_target = resolve_astro_target(request.workspace, request.deployment)
    # Parse's choice, which the lock covers: never worked out again here.
    bundle_name = request.bundle
    coalescing = bool(settings.lock_table and request.lock_key and coalesces(request))
    shipped = _check_gathering(settings, request) if coalescing else None
    if shipped:
        return shipped
    hands_over = coalescing and not request.keeps_lock
    token = read_token(settings.token_secret_arn)
    per_repo = request.repo if bundle_name != MAIN_BUNDLE else None
    listed_prefix = bundle_prefix(request.workspace, request.deployment, per_repo)
    # Read under the lock, before the gathering: no change is deferred while it is held.
    carried = read_deferred(settings.lock_table, request.lock_key) if coalescing else []
    carried_changes = [entry.execution for entry in carried if entry.execution != request.execution]
    # Its removal also removes the CLI's config, which holds the token.
    with _cli_work_folder(settings.storage) as work:
        dags = work / "dags"

        def run_astro(argv: list[str]) -> CliRun:
            return run_cli(argv, cli_environment(settings, work / "home", token), cwd=work,
                           timeout_seconds=_cli_timeout(remaining_ms()), secrets=[token])

        def version_of(run: CliRun) -> str:
            return deployed_version(
                run, deployment_id=astro_target.deployment_id,
                astro_deployments_key=f"{request.workspace}/{request.deployment}", secret=settings.token_secret_arn,
            )

        kept = claim_kept_bundle(settings.storage, dags, settings.bucket, listed_prefix)
        bundle: Bundle | None = None
        try:
            bundle = gather_bundle(settings.bucket, request.workspace, request.deployment, dags, per_repo, kept)
            refuse_empty(bundle, request, astro_target, bundle_name, listed_prefix)
            if per_repo:
                ensure_bundle(astro_target, bundle_name, run_astro, settings.astro_cli)
            pending = begin_ship(settings.bucket, request, astro_target.deployment_id, bundle.stored, carried_changes)
            if hands_over:
                # The changed repos: they stay as gathered until the ship has ended (or been rolled back).
                hand_over(settings.lock_table, request.lock_key, request.execution,
                          [request.repo, *(entry.repo for entry in carried)], settings.lease_seconds)
            argv = cli_arguments(settings.astro_cli, astro_target, dags, description(request), bundle_name)
            run, version, astro_retries = _deploy_with_retries(lambda: run_astro(argv), version_of, remaining_ms)
        except Exception:
            if carried:
                # Best effort: the ship's own error is what the execution fails with.
                with contextlib.suppress(BotoCoreError, ClientError):
                    note_failed_ship(settings.lock_table, request.lock_key, carried, request.execution)
            raise
        finally:
            if bundle is not None:
                keep_bundle(settings.storage, dags, settings.bucket, listed_prefix, bundle.written, settings.kept_bundles_bytes)
    result = DeployResult(
        deployment_id=astro_target.deployment_id, bundle=bundle_name, version=version, files=bundle.files, bytes=bundle.bytes,
        repos=bundle.repos, files_kept=bundle.files_kept, archives=bundle.archives, carried=carried_changes,
        lock_handed_over=hands_over, astro_retries=astro_retries,
    )
    # After the ship, which Astro holds whatever happens to the record; the slot last, once all is recorded.
    problems = [record_ship(settings.bucket, pending, version) if request.record_live else None,
                _tell_carried(settings, request, carried, result),
                _end_ship(settings, request) if hands_over else None]
    return DeployOutcome(result=result, cli_output=run.tail, manifest_problem="; ".join(filter(None, problems)) or None)


def _end_ship(settings: DeploySettings, request: DeployInput) -> str | None:
    try:
        end_ship(settings.lock_table, request.lock_key, request.execution)
    except (BotoCoreError, ClientError) as error:
        # The ship stands; the slot is freed by the Sweeper once this execution has ended.
        return f"the ship slot could not be released: {error}"
    return None


def _tell_carried(settings: DeploySettings, request: DeployInput, carried: list[Deferred], result: DeployResult
                  ) -> str | None:
    """Leave each deferred execution the ship carried its outcome; return why they could not be told, or None."""
    if not carried:
        return None
    outcome = ShipOutcome(
        shipped=True, reason=f"carried by the ship of execution {request.execution}", shipped_by=request.execution,
        deployment_id=result.deployment_id, bundle=result.bundle, version=result.version,
    )
    try:
        tell_carried(settings.lock_table, request.lock_key, carried, outcome)
    except (BotoCoreError, ClientError) as error:
        # The ship stands: the changes stay deferred, and the next release wakes one of them to ship again.
        return f"the carried executions could not be told: {error}"
    return None
