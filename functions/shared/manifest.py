"""What is live: per repo, what its last successful deploy shipped; per Dag bundle, what Astro last received.

Both live in the DAG bucket (versioned: earlier records stay as noncurrent versions):

    manifests/{ws}/{dep}/repos/{repo}.json       RepoManifest: commit, execution, time, files with their checksums
                                                 and the copies' ETags, dag_ids with their files, bundle and version
    manifests/{ws}/{dep}/bundles/{bundle}.json   BundleShip: the bundle's last ship and each repo's files in it

Deploy writes them, under the lock that covers the bundle: the BundleShip as "shipping" before it runs the CLI,
then, once Astro accepted the ship, the repo's manifest and the BundleShip as "shipped" with the version Astro
answered. A ship that never confirmed (the CLI failed or hung, the execution was stopped) leaves its bundle
"shipping": Astro may hold what it sent whatever the rollback put back in the bucket, so the bundle counts as
unknown, and nothing as unchanged, until a later ship confirms.
"""

import hashlib
import json
from dataclasses import field
from datetime import datetime, timezone
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.aws import client
from functions.shared.dag_bundles import MAIN_BUNDLE
from functions.shared.documents import Document, InvalidDocument
from functions.shared.execution_state import LiveComparison, LiveDiff, RunScope
from functions.shared.paths import (
    bundle_ship_key, deployment_prefix, is_segment, manifests_prefix, repo_manifest_key, repo_prefix,
)
from functions.shared.plan_store import Plan, load_plan
from functions.shared.records import FrozenRecord

SHIPPING, SHIPPED = "shipping", "shipped"
# Paths and dag_ids listed in a comparison (the state and the API answer stay small); the counts are complete.
LISTED = 20


class LiveFile(Document):
    path: str  # inside the repo
    checksum: str  # of the source shipped (PlannedFile.checksum)
    size: int
    stored_etag: str  # of its copy under the repo's prefix in the DAG bucket
    dag_ids: list[str] = field(default_factory=list)


class RepoManifest(Document):
    """What a repo's last successful deploy shipped."""

    workspace: str
    deployment: str
    repo: str
    commit: str | None = None
    execution: str
    deployed_at: str  # ISO 8601, UTC
    deployment_id: str  # the Astro deployment
    bundle: str
    bundle_version: str  # as Astro answered
    files: list[LiveFile]
    # The execution whose ship it was: another one when that ship carried this execution's deferred change.
    shipped_by: str | None = None

    def stored(self) -> dict[str, str]:
        return {entry.path: entry.stored_etag for entry in self.files}

    def dags(self) -> list[dict[str, str]]:
        return [{"dag_id": dag_id, "path": entry.path} for entry in self.files for dag_id in entry.dag_ids]


class ShippedRepo(Document):
    repo: str
    files: int
    fingerprint: str  # of the repo's prefix as shipped (`fingerprint`)


class BundleShip(Document):
    """A Dag bundle's last ship: who sent it, and each repo's files in it."""

    workspace: str
    deployment: str
    bundle: str
    deployment_id: str
    execution: str
    repo: str  # the repo whose request shipped it
    commit: str | None = None
    state: Literal["shipping", "shipped"]
    started_at: str
    finished_at: str | None = None
    version: str | None = None
    repos: list[ShippedRepo]
    # The executions whose deferred changes the ship carried (functions/shared/deferred_ships.py).
    carried: list[str] = field(default_factory=list)

    def holds(self, repo: str, fingerprint_of_files: str) -> bool:
        return self.state == SHIPPED and any(
            shipped.repo == repo and shipped.fingerprint == fingerprint_of_files for shipped in self.repos
        )


class PendingShip(FrozenRecord):
    """A ship Deploy has announced: what `confirm_ship` records once Astro accepted it."""

    ship: BundleShip
    stored: dict[str, dict[str, str]]  # each repo's prefix as gathered: repo -> path -> ETag


def fingerprint(stored: dict[str, str]) -> str:
    """One digest of a repo prefix's paths and ETags: equal only if every file is."""
    digest = hashlib.sha256()
    for path in sorted(stored):
        digest.update(f"{path}\0{stored[path]}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def stored_files(bucket: str, workspace: str, deployment: str, repo: str | None = None) -> dict[str, dict[str, str]]:
    """The objects under the deployment's repo prefixes (or one repo's): repo -> path -> ETag."""
    prefix = repo_prefix(workspace, deployment, repo) if repo else deployment_prefix(workspace, deployment)
    found: dict[str, dict[str, str]] = {repo: {}} if repo else {}
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            folder, path = (repo, relative) if repo else relative.partition("/")[::2]
            if is_segment(folder) and path and not path.endswith("/"):
                found.setdefault(folder, {})[path] = item["ETag"].strip('"')
    return found


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _put(bucket: str, key: str, record: Document) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(record.to_json()).encode(),
                            ContentType="application/json")


def _get(bucket: str, key: str) -> dict | None:
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return json.loads(body)


def read_repo_manifest(bucket: str, workspace: str, deployment: str, repo: str) -> RepoManifest | None:
    document_ = _get(bucket, repo_manifest_key(workspace, deployment, repo))
    return RepoManifest.from_json(document_) if document_ is not None else None


def read_bundle_ship(bucket: str, workspace: str, deployment: str, bundle: str) -> BundleShip | None:
    document_ = _get(bucket, bundle_ship_key(workspace, deployment, bundle))
    return BundleShip.from_json(document_) if document_ is not None else None


def read_deployment(bucket: str, workspace: str, deployment: str) -> tuple[list[RepoManifest], list[BundleShip]]:
    """Every repo manifest and bundle ship recorded for the deployment."""
    prefix = manifests_prefix(workspace, deployment)
    keys = [item["Key"] for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]
    documents = {key: _get(bucket, key) for key in keys}
    repos = [RepoManifest.from_json(body) for key, body in documents.items()
             if key.startswith(f"{prefix}repos/") and body is not None]
    bundles = [BundleShip.from_json(body) for key, body in documents.items()
               if key.startswith(f"{prefix}bundles/") and body is not None]
    return repos, bundles


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
    _put(bucket, bundle_ship_key(scope.workspace, scope.deployment, scope.bundle), ship)
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
        _put(bucket, repo_manifest_key(ship.workspace, ship.deployment, manifest.repo), manifest)
    ship.state, ship.finished_at, ship.version = SHIPPED, finished, version
    _put(bucket, bundle_ship_key(ship.workspace, ship.deployment, ship.bundle), ship)
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


def _listed(items: list[str]) -> list[str]:
    if len(items) <= LISTED:
        return items
    return [*items[:LISTED], f"... and {len(items) - LISTED} more"]


def diff_with_live(plan: Plan, manifest: RepoManifest | None) -> LiveDiff:
    live = {entry.path: entry.checksum for entry in manifest.files} if manifest else {}
    planned = {entry.path: entry.checksum for entry in plan.files}
    added = sorted(set(planned) - set(live))
    removed = sorted(set(live) - set(planned))
    changed = sorted(path for path in set(planned) & set(live) if planned[path] != live[path])
    live_ids = {dag_id for entry in manifest.files for dag_id in entry.dag_ids} if manifest else set()
    planned_ids = {dag_id for entry in plan.files for dag_id in entry.dag_ids}
    return LiveDiff(
        added=len(added), changed=len(changed), removed=len(removed),
        unchanged=len(set(planned) & set(live)) - len(changed),
        files_added=_listed(added), files_changed=_listed(changed), files_removed=_listed(removed),
        dag_ids_added=_listed(sorted(planned_ids - live_ids)), dag_ids_removed=_listed(sorted(live_ids - planned_ids)),
    )


def compare_with_live(bucket: str, plan: Plan) -> LiveComparison:
    """The plan against what is live for its repo; `unchanged` only if shipping it would change nothing: the same
    files by checksum, to the same bundle, still in the repo's prefix, and held by the bundle's last confirmed ship."""
    manifest = read_repo_manifest(bucket, plan.workspace, plan.deployment, plan.repo)
    diff = diff_with_live(plan, manifest)
    unchanged, reason = _unchanged(bucket, plan, manifest, diff)
    return LiveComparison(
        unchanged=unchanged, reason=reason, live_commit=manifest.commit if manifest else None,
        live_execution=manifest.execution if manifest else None, diff=diff,
    )


def _unchanged(bucket: str, plan: Plan, manifest: RepoManifest | None, diff: LiveDiff) -> tuple[bool, str]:
    where = f"{plan.workspace}/{plan.deployment}"
    if manifest is None:
        return False, f"nothing is recorded as live for repo {plan.repo} in {where}"
    deployed = f"execution {manifest.execution}" + (f" (commit {manifest.commit})" if manifest.commit else "")
    if diff.added or diff.changed or diff.removed:
        return False, (f"{diff.added} files added, {diff.changed} changed, {diff.removed} removed since {deployed}")
    if manifest.bundle != plan.bundle:
        return False, f"{deployed} shipped to Dag bundle {manifest.bundle}; this request ships to {plan.bundle}"
    live = fingerprint(manifest.stored())
    stored = stored_files(bucket, plan.workspace, plan.deployment, plan.repo)[plan.repo]
    if fingerprint(stored) != live:
        return False, f"the repo's folder in the DAG bucket no longer holds what {deployed} deployed"
    ship = read_bundle_ship(bucket, plan.workspace, plan.deployment, plan.bundle)
    if ship is None or ship.state != SHIPPED:
        last = f" (execution {ship.execution})" if ship else ""
        return False, f"Astro never confirmed the last ship of Dag bundle {plan.bundle}{last}: it may hold other files"
    if not ship.holds(plan.repo, live):
        return False, f"the last ship of Dag bundle {plan.bundle} (execution {ship.execution}) held other files"
    return True, (f"the files are those {deployed} deployed, held by the last ship of Dag bundle {plan.bundle} "
                  f"(version {ship.version}, execution {ship.execution})")
