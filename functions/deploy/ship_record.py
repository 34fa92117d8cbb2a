"""Deploy's record of a ship in the DAG bucket (the records: functions/shared/manifest.py): the bundle's ship
announced before the CLI runs, then, once Astro accepted it, each repo's manifest and the ship confirmed."""

from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.documents import InvalidDocument
from functions.shared.execution_state import RunScope
from functions.shared.manifest import (
    SHIPPED, SHIPPING, BundleShip, LiveFile, RepoManifest, ShippedRepo, fingerprint, put_record, stored_files,
)
from functions.shared.paths import bundle_ship_key, repo_manifest_key
from functions.shared.plan_store import Plan, load_plan
from functions.shared.records import FrozenRecord


class PendingShip(FrozenRecord):
    """A ship Deploy has announced: what `confirm_ship` records once Astro accepted it."""

    ship: BundleShip
    stored: dict[str, dict[str, str]]  # each repo's prefix as gathered: repo -> path -> ETag


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def begin_ship(bucket: str, scope: RunScope, deployment_id: str,
               stored: dict[str, dict[str, str]] | None = None, carried: list[str] | None = None) -> PendingShip:
    """Record that the bundle is being shipped, with each repo's files (repo -> path -> ETag) as the ship's gathering
    listed them, or as they are now: the lock keeps them so; and the deferred executions it carries."""
    if stored is None:
        per_repo = scope.repo if scope.bundle != MAIN_BUNDLE else None
        stored = stored_files(bucket, scope.workspace, scope.deployment, per_repo)
    ship = BundleShip(
        workspace=scope.workspace, deployment=scope.deployment, bundle=scope.bundle, deployment_id=deployment_id,
        execution=scope.execution, repo=scope.repo, commit=scope.commit, state=SHIPPING, started_at=_now(),
        repos=[ShippedRepo(repo=repo, files=len(files), fingerprint=fingerprint(files))
               for repo, files in sorted(stored.items())],
        carried=list(carried or []),
    )
    put_record(bucket, bundle_ship_key(scope.workspace, scope.deployment, scope.bundle), ship)
    return PendingShip(ship=ship, stored=stored)


def confirm_ship(bucket: str, pending: PendingShip, plans: list[Plan], version: str) -> list[RepoManifest]:
    """Astro accepted the ship: record the manifest of each repo whose change it shipped (the shipper's, and those
    of the deferred executions it carried: `plans`), then the bundle's ship as confirmed."""
    ship = pending.ship
    finished = _now()
    manifests = [
        RepoManifest(
            workspace=ship.workspace, deployment=ship.deployment, repo=plan.repo, commit=plan.commit,
            execution=plan.execution, deployed_at=finished, deployment_id=ship.deployment_id, bundle=ship.bundle,
            bundle_version=version, shipped_by=ship.execution,
            files=[LiveFile(path=entry.path, checksum=entry.checksum, size=entry.size,
                            stored_etag=pending.stored.get(plan.repo, {}).get(entry.path, ""), dag_ids=entry.dag_ids)
                   for entry in plan.files],
        )
        for plan in plans
    ]
    for manifest in manifests:
        put_record(bucket, repo_manifest_key(ship.workspace, ship.deployment, manifest.repo), manifest)
    ship.state, ship.finished_at, ship.version = SHIPPED, finished, version
    put_record(bucket, bundle_ship_key(ship.workspace, ship.deployment, ship.bundle), ship)
    return manifests


def record_ship(bucket: str, pending: PendingShip, version: str) -> str | None:
    """Record what Astro accepted, from the plans of the execution and of those it carried; return why it could
    not be, or None.

    A record that fails does not fail the deploy, which Astro holds: the bundle stays "shipping", which no later
    request counts as unchanged, until the next ship confirms."""
    try:
        plans = [load_plan(bucket, execution) for execution in [pending.ship.execution, *pending.ship.carried]]
        confirm_ship(bucket, pending, plans, version)
    except (BotoCoreError, ClientError, InvalidDocument) as error:
        return f"what is live could not be recorded: {error}"
    return None
