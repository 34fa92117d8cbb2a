"""Targets: what is live in a deployment, repo by repo (commit, execution, time, DAGs, Dag bundle and version), from
the manifests Deploy records (functions/shared/manifest.py)."""

from functions.shared.documents import Document
from functions.shared.manifest import BundleShip, RepoManifest, fingerprint, read_deployment
from functions.shared.paths import SEGMENT_RULE, is_segment


class InvalidTarget(ValueError):
    """The names cannot be a workspace's and a deployment's."""


class TargetNotFound(LookupError):
    """Nothing was ever deployed there."""


class LiveRepo(Document):
    repo: str
    commit: str | None
    execution: str
    deployed_at: str
    bundle: str
    bundle_version: str  # the version Astro answered to this repo's deploy
    files: int
    dags: list[dict]  # {"dag_id", "path"}
    # Whether the bundle's last ship, confirmed by Astro, holds exactly these files: false after another ship of
    # the bundle that did not confirm (Astro may run what it sent) or held other files of the repo.
    in_last_ship: bool


class LiveBundle(Document):
    bundle: str
    state: str  # "shipped" (Astro accepted it) or "shipping" (never confirmed: Astro may hold it or not)
    execution: str
    repo: str  # whose request shipped it
    commit: str | None
    started_at: str
    finished_at: str | None
    version: str | None
    repos: list[str]


class Targets(Document):
    workspace: str
    deployment: str
    deployment_id: str | None  # the Astro deployment
    repos: list[LiveRepo]
    bundles: list[LiveBundle]


def describe_targets(bucket: str, workspace: str, deployment: str) -> Targets:
    for name, value in (("workspace", workspace), ("deployment", deployment)):
        if not is_segment(value):
            raise InvalidTarget(f"{name} {value[:80]!r} is not a valid name ({SEGMENT_RULE})")
    manifests, ships = read_deployment(bucket, workspace, deployment)
    if not manifests and not ships:
        raise TargetNotFound(f"nothing has been deployed to {workspace}/{deployment} by astro-dag-deploy")
    by_bundle = {ship.bundle: ship for ship in ships}
    return Targets(
        workspace=workspace,
        deployment=deployment,
        deployment_id=next((record.deployment_id for record in [*ships, *manifests]), None),
        repos=[_live_repo(manifest, by_bundle.get(manifest.bundle)) for manifest in manifests],
        bundles=[_live_bundle(ship) for ship in ships],
    )


def _live_repo(manifest: RepoManifest, ship: BundleShip | None) -> LiveRepo:
    return LiveRepo(
        repo=manifest.repo, commit=manifest.commit, execution=manifest.execution, deployed_at=manifest.deployed_at,
        bundle=manifest.bundle, bundle_version=manifest.bundle_version, files=len(manifest.files),
        dags=manifest.dags(), in_last_ship=bool(ship and ship.holds(manifest.repo, fingerprint(manifest.stored()))),
    )


def _live_bundle(ship: BundleShip) -> LiveBundle:
    return LiveBundle(
        bundle=ship.bundle, state=ship.state, execution=ship.execution, repo=ship.repo, commit=ship.commit,
        started_at=ship.started_at, finished_at=ship.finished_at, version=ship.version,
        repos=[shipped.repo for shipped in ship.repos],
    )
