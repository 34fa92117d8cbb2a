"""What is live: per repo, what its last successful deploy shipped; per Dag bundle, what Astro last received.

Both live in the DAG bucket (versioned: earlier records stay as noncurrent versions):

    manifests/{ws}/{dep}/repos/{repo}.json       RepoManifest: commit, execution, time, files with their checksums
                                                 and the copies' ETags, dag_ids with their files, bundle and version
    manifests/{ws}/{dep}/bundles/{bundle}.json   BundleShip: the bundle's last ship and each repo's files in it

Deploy writes them (functions/deploy/ship_record.py), under the lock that covers the bundle: the BundleShip as
"shipping" before it runs the CLI, then, once Astro accepted the ship, the repo's manifest and the BundleShip as
"shipped" with the version Astro answered. A ship that never confirmed (the CLI failed or hung, the execution was
stopped) leaves its bundle "shipping": Astro may hold what it sent whatever the rollback put back in the bucket, so
the bundle counts as unknown, and nothing as unchanged, until a later ship confirms
(functions/shared/live_comparison.py).

This module is what every reader of the records needs, and only that: Parse and Snapshot load it at every cold
start.
"""

import hashlib
import json
from dataclasses import field
from typing import Literal

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.documents import Document
from functions.shared.paths import (
    bundle_ship_key, deployment_prefix, is_segment, manifests_prefix, repo_manifest_key, repo_prefix,
)

SHIPPING, SHIPPED = "shipping", "shipped"


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


def fingerprint(stored: dict[str, str]) -> str:
    """One digest of a repo prefix's paths and ETags: equal only if every file is."""
    digest = hashlib.sha256()
    for path in sorted(stored):
        digest.update(f"{path}\0{stored[path]}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def stored_listing(bucket: str, workspace: str, deployment: str, repo: str | None = None
                   ) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """The objects under the deployment's repo prefixes (or one repo's): repo -> path -> ETag, and repo -> bytes."""
    prefix = repo_prefix(workspace, deployment, repo) if repo else deployment_prefix(workspace, deployment)
    found: dict[str, dict[str, str]] = {repo: {}} if repo else {}
    sizes: dict[str, int] = {repo: 0} if repo else {}
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            folder, path = (repo, relative) if repo else relative.partition("/")[::2]
            if is_segment(folder) and path and not path.endswith("/"):
                found.setdefault(folder, {})[path] = item["ETag"].strip('"')
                sizes[folder] = sizes.get(folder, 0) + item["Size"]
    return found, sizes


def stored_files(bucket: str, workspace: str, deployment: str, repo: str | None = None) -> dict[str, dict[str, str]]:
    """The objects under the deployment's repo prefixes (or one repo's): repo -> path -> ETag."""
    return stored_listing(bucket, workspace, deployment, repo)[0]


def put_record(bucket: str, key: str, record: Document) -> None:
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


def record_of_execution(bucket: str, workspace: str, deployment: str, repo: str, execution: str
                        ) -> RepoManifest | None:
    """The repo's live record if it holds `execution`'s change: shipped by it, or by a later ship that carried its
    deferred change (`shipped_by`)."""
    manifest = read_repo_manifest(bucket, workspace, deployment, repo)
    return manifest if manifest is not None and manifest.execution == execution else None


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
