"""A request's plan against what is live for its repo (the records: functions/shared/manifest.py): what changed,
and whether shipping it would change nothing."""

from functions.shared.execution_state import LiveComparison, LiveDiff
from functions.shared.manifest import (
    SHIPPED, RepoManifest, fingerprint, read_bundle_ship, read_repo_manifest, stored_files,
)
from functions.shared.plan_store import Plan

# Paths and dag_ids listed in a comparison (the state and the API answer stay small); the counts are complete.
LISTED = 20


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
