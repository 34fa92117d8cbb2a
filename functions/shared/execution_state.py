"""The execution's state: the JSON that flows from state to state of the deploy state machine, as one model.

The execution's input is the request (`functions/shared/models.py`). Parse replaces it with its plan summary,
which names who the run is for (`RunScope`); every later state adds its result under its own key (`StateKey`),
and the state machine's result paths are built from those keys (`cdk/state_machine.py`). Notify, Status and
Recover read the state through `ExecutionState`.
"""

import dataclasses
import typing
from dataclasses import field
from enum import StrEnum
from typing import Literal

from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.documents import Document, read_leniently
from functions.shared.paths import is_segment

# The request's fields that name who it is for (DeployRequest's aliases).
WORKSPACE_FIELD = "astroWorkspace"
DEPLOYMENT_FIELD = "astroDeployment"
REPO_FIELD = "repo"
COMMIT_FIELD = "commit"
NAME_FIELDS = (WORKSPACE_FIELD, DEPLOYMENT_FIELD, REPO_FIELD, COMMIT_FIELD)
DRY_RUN_FIELD = "dry_run"
# The error of a lock release whose condition failed: this execution no longer holds the lock.
LOCK_NOT_HELD = "DynamoDB.ConditionalCheckFailedException"
ROLLBACK_FAILED = "FAILED"


class StateKey(StrEnum):
    """Where each state puts its result in the execution's state."""

    LOCK = "lock"  # AcquireLock: the lease, or how long to wait for it
    RESTORE_POINT = "restore_point"  # Snapshot
    CLEAR = "clear"  # ClearPrefix
    UPLOAD = "upload"
    DEPLOY = "deploy"
    FAILURE = "failure"  # a step's Catch result, then the `<Step> failed` state's summary of it
    ROLLBACK = "rollback"  # Rollback's result, or "Rollback failed"'s summary
    ROLLBACK_ERROR = "rollback_error"  # Rollback's Catch result
    LOCK_RELEASE = "lock_release"  # a lock release's Catch result
    NOTIFICATION = "notification"
    NOTIFICATION_ERROR = "notification_error"  # Notify's Catch result
    RESHIP_ERROR = "reship_error"  # recovery: the Catch result of re-shipping the restored bundle
    FLUSH = "flush"  # "Ship deferred changes first": the ship of another execution's deferred change to this repo
    SHIP_OR_DEFER = "ship_or_defer"  # ShipOrDefer: ship now, or let the ship of an execution waiting carry this
    CARRIED = "carried"  # DeferShip: the ship that carried the deferred change, or why it was not carried
    LIVE = "live"  # CompareWithLive, under the lock: the request against what is live, and whether to skip the ship
    DRY_RUN_REPORT = "dry_run_report"  # DryRun: the diff against what is live and every problem

    @property
    def path(self) -> str:
        return f"$.{self.value}"

    def field_path(self, name: str) -> str:
        """`$.<key>.<name>`, for a field the key's document has: the state machine and the models agree."""
        if name not in _document_fields(self):
            raise ValueError(f"the {self.value} document has no field {name!r}")
        return f"{self.path}.{name}"


class RunScope(Document):
    """Who and what a run deploys for; every step's input carries it (the state after Parse)."""

    workspace: str
    deployment: str
    repo: str
    commit: str | None = None
    execution: str
    bundle: str = MAIN_BUNDLE  # the Astro Dag bundle the repo ships to (Parse resolves it)

    def __post_init__(self) -> None:
        for name in ("workspace", "deployment", "repo"):
            if not is_segment(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)[:80]!r} is not a valid name")


class RequestedNames(Document):
    """Who a request says it is for, as sent: a request Parse refused may hold anything there."""

    workspace: object = None
    deployment: object = None
    repo: object = None
    commit: object = None
    dry_run: bool = False  # only when the request says so with a JSON true

    @classmethod
    def from_request(cls, request: object) -> "RequestedNames":
        fields = request if isinstance(request, dict) else {}
        return cls(workspace=fields.get(WORKSPACE_FIELD), deployment=fields.get(DEPLOYMENT_FIELD),
                   repo=fields.get(REPO_FIELD), commit=fields.get(COMMIT_FIELD),
                   dry_run=fields.get(DRY_RUN_FIELD) is True)


# ---- what each state adds ----


class PlanSummary(RunScope):
    """Parse's output, which becomes the state: small enough to read in the console, with a pointer to the plan."""

    prefix: str
    plan: str
    files: int
    bytes: int
    dag_count: int
    dag_ids: list[str]
    # The deployment's lock (functions/shared/locking.py): known before AcquireLock runs, so that any failure from
    # AcquireLock on can release it.
    lock_key: str
    allow_empty_deployment: bool = False
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False  # check and compare only: the state machine goes from Parse to DryRun
    force: bool = False  # ship even when the files are what is live


class RefusedDryRun(Document):
    """Parse's output for a dry run whose request it refused: the problems, which the DryRun state reports."""

    dry_run: bool = True
    error: str
    cause: str
    problems: list[str]


class LiveDiff(Document):
    """A repo's files and dag_ids in a request against those live (its manifest); path lists are bounded."""

    added: int = 0
    changed: int = 0  # same path, another checksum
    removed: int = 0
    unchanged: int = 0
    files_added: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    dag_ids_added: list[str] = field(default_factory=list)
    dag_ids_removed: list[str] = field(default_factory=list)


class LiveComparison(Document):
    """What is live for the repo, how the request differs, and whether shipping it would change anything."""

    unchanged: bool  # the files are what is live and the Dag bundle's last ship holds them: nothing to ship
    reason: str
    live_commit: str | None = None
    live_execution: str | None = None
    diff: LiveDiff


class DryRunReport(Document):
    """The DryRun state's result: the execution SUCCEEDS with it when `passed`, else FAILS with `error`/`cause`."""

    passed: bool
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # the error the real run would fail with
    cause: str | None = None
    comparison: LiveComparison | None = None  # None when Parse refused the request
    warnings: list[str] = field(default_factory=list)


class LockState(Document):
    """The lock as the state machine sees it: `acquired`, else who holds it and how long to wait."""

    key: str
    acquired: bool
    holder: str | None = None
    attempt: int = 0
    waiting_since: float
    wait_seconds: int = 0
    waited_seconds: float = 0
    # Another execution's change to this repo waits for a ship (functions/shared/deferred_ships.py): it ships
    # first, so that the restore point is what Astro last received.
    flush_first: bool = False
    # Not acquired: the ship in flight (its execution) carries a change of this repo, or one waits for the next
    # ship; the execution waits for that ship to end (functions/shared/ship_slot.py), not for the lock.
    ship_in_flight: str | None = None


class RestorePointSummary(Document):
    prefix: str
    objects: int
    restore_point: str  # s3:// URI of the restore point


class ClearResult(Document):
    prefix: str
    deleted: int
    archive: str  # the repo's archive, removed before the prefix changed (functions/shared/repo_archive.py)
    archive_left: str | None = None  # why it could not be removed: harmless, the next ship finds it stale


class RepoArchive(Document):
    """The archive of a repo prefix (functions/shared/repo_archive.py), as Deploy left it."""

    key: str
    written: bool = True
    files: int = 0
    bytes: int = 0  # the archive's size
    error: str | None = None  # why it was not written: the next ship reads that repo object by object again


class UploadResult(Document):
    prefix: str
    copied: int
    bytes: int


class AstroRetry(Document):
    """A deploy attempt Astro was unavailable for, and the wait before the next one."""

    error: str  # the attempt's error, its first line
    waited_seconds: int


class DeployResult(Document):
    deployment_id: str  # the Astro deployment shipped to
    bundle: str = MAIN_BUNDLE  # the Dag bundle shipped: "main" (executions from before per-repo bundles), or the repo's
    version: str  # the DAG bundle version the CLI reported
    files: int
    bytes: int
    repos: list[str]
    # Files left in place from the last ship's bundle, kept in the function's storage: none of them read from S3.
    files_kept: int = 0
    # Written for the repos read object by object (their archive missing or stale), from the files downloaded.
    archives: list[RepoArchive] = field(default_factory=list)
    # The executions whose deferred changes it carried (functions/shared/deferred_ships.py).
    carried: list[str] = field(default_factory=list)
    # A deferred execution back for the lock whose change a ship had carried meanwhile: that ship's execution (and
    # its version above); nothing was shipped again.
    carried_by: str | None = None
    # Whether Deploy handed the lock over to the ship slot once it had gathered (functions/shared/ship_slot.py): the
    # execution no longer holds the lock.
    lock_handed_over: bool = False
    # The attempts Astro was unavailable for before the one that shipped, each with the wait that followed it.
    astro_retries: list[AstroRetry] = field(default_factory=list)


class ShipDecision(Document):
    """ShipOrDefer's answer: ship now, or defer to the executions waiting to change other repos."""

    defer: bool
    reason: str
    waiting: list[str] = field(default_factory=list)  # the executions whose ship will carry this change


class ShipOutcome(Document):
    """What a deferred execution is told: the ship that carried its change, or why it must ship itself."""

    shipped: bool
    reason: str
    shipped_by: str | None = None  # the execution whose ship carried it
    deployment_id: str | None = None
    bundle: str | None = None
    version: str | None = None  # the DAG bundle version that carries its commit
    failed_ships: list[str] = field(default_factory=list)  # executions whose ships carried it and failed


class CaughtError(Document):
    """What a Catch puts in the state (Step Functions' names)."""

    Error: str
    Cause: str | None = None


class Failure(Document):
    """Which state failed, with the error and cause the execution fails with."""

    state: str
    error: str
    cause: str | None = None


class RestoreResult(Document):
    # "deferred": recovery found the execution's change left to a later ship (functions/shared/deferred_ships.py)
    status: Literal["restored", "nothing to restore", "deferred"]
    prefix: str
    restored: int = 0
    removed: int = 0
    unchanged: int = 0


class RollbackResult(RestoreResult):
    """Rollback's: the repo put back, and whether Rollback ended the execution's ship slot, which its Deploy had
    handed the lock over to (functions/shared/ship_slot.py): then the execution holds no lock to release."""

    ship_ended: bool = False


class RollbackFailure(Document):
    status: Literal["FAILED"] = ROLLBACK_FAILED
    error: str
    cause: str | None = None


class NotificationResult(Document):
    subject: str
    message_id: str


class ExecutionState(Document):
    """The whole state; each key is None until its state has run."""

    plan: PlanSummary | None = None  # None while the state is still the request (Parse failed)
    lock: LockState | None = None
    restore_point: RestorePointSummary | None = None
    clear: ClearResult | None = None
    upload: UploadResult | None = None
    deploy: DeployResult | None = None
    flush: DeployResult | None = None
    ship_or_defer: ShipDecision | None = None
    carried: ShipOutcome | None = None
    failure: Failure | None = None  # None while it is still the raw Catch result
    # Rollback's; Recover's restore (recovery state machine) reads as one that ended no ship slot.
    rollback: RollbackResult | RollbackFailure | None = None
    rollback_error: CaughtError | None = None
    lock_release: CaughtError | None = None
    notification: NotificationResult | None = None
    notification_error: CaughtError | None = None
    reship_error: CaughtError | None = None
    live: LiveComparison | None = None
    dry_run_report: DryRunReport | None = None

    @classmethod
    def from_json(cls, data: object) -> "ExecutionState":
        """Read leniently: a reader of a failed execution must go on, so a part that does not fit its model
        (the request Parse refused, a Catch result not summarized yet) reads as None."""
        document = data if isinstance(data, dict) else {}
        types = typing.get_type_hints(cls)
        return cls(plan=read_leniently(types["plan"], document),
                   **{key.value: read_leniently(types[key.value], document.get(key.value)) for key in StateKey})


def plan_field_path(name: str) -> str:
    """`$.<name>`, for a field of Parse's plan summary (the state's top level)."""
    if name not in {plan_field.name for plan_field in dataclasses.fields(PlanSummary)}:
        raise ValueError(f"the plan summary has no field {name!r}")
    return f"$.{name}"


def _document_fields(key: StateKey) -> set[str]:
    annotation = typing.get_type_hints(ExecutionState)[key.value]
    models = [model for model in typing.get_args(annotation) if dataclasses.is_dataclass(model)]
    if key is StateKey.FAILURE:
        models.append(CaughtError)  # a step's Catch result lands there first
    return {model_field.name for model in models for model_field in dataclasses.fields(model)}
