"""Snapshot a repo prefix before it changes, and put it back exactly as it was.

The DAG bucket is versioned: a restore point records which version of which key was current, and restoring
copies those versions back over whatever the failed execution left. Nothing is permanently deleted.
"""

import json
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.documents import Document
from functions.shared.errors import RollbackFailed
from functions.shared.execution_state import RestorePointSummary, RestoreResult, RunScope
from functions.shared.paths import repo_prefix, restore_point_key

DELETE_BATCH = 1000


class SavedObject(Document):
    key: str
    version_id: str
    etag: str


class RestorePoint(Document):
    prefix: str
    execution: str
    objects: list[SavedObject]


def current_objects(bucket: str, prefix: str) -> dict[str, SavedObject]:
    """The current version of every key under the prefix (keys whose latest version is a delete marker are gone)."""
    current = {}
    for page in client("s3").get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if version["IsLatest"]:
                current[version["Key"]] = SavedObject(
                    key=version["Key"], version_id=version["VersionId"], etag=version["ETag"]
                )
    return current


def save_restore_point(bucket: str, scope: RunScope) -> RestorePointSummary:
    prefix = repo_prefix(scope.workspace, scope.deployment, scope.repo)
    point = RestorePoint(
        prefix=prefix, execution=scope.execution, objects=sorted(current_objects(bucket, prefix).values(),
                                                                  key=lambda saved: saved.key)
    )
    key = restore_point_key(scope.execution)
    client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(point.to_json()).encode(),
                            ContentType="application/json")
    return RestorePointSummary(prefix=prefix, objects=len(point.objects), restore_point=f"s3://{bucket}/{key}")


def _load_restore_point(bucket: str, execution: str) -> RestorePoint | None:
    try:
        body = client("s3").get_object(Bucket=bucket, Key=restore_point_key(execution))["Body"].read()
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return None
        raise
    return RestorePoint.from_json(json.loads(body))


def has_restore_point(bucket: str, execution: str) -> bool:
    """Whether the execution took its snapshot, so may have changed its repo prefix."""
    return _load_restore_point(bucket, execution) is not None


def restore(bucket: str, scope: RunScope) -> RestoreResult:
    """Make the repo prefix hold exactly what the restore point recorded, then check that it does."""
    prefix = repo_prefix(scope.workspace, scope.deployment, scope.repo)
    point = _load_restore_point(bucket, scope.execution)
    if point is None:
        # The snapshot is taken before anything under the prefix changes: without one, nothing changed.
        return RestoreResult(status="nothing to restore", prefix=prefix)
    s3 = client("s3")
    saved = {entry.key: entry for entry in point.objects}
    current = current_objects(bucket, prefix)

    extra = sorted(set(current) - set(saved))
    for start in range(0, len(extra), DELETE_BATCH):
        batch = [{"Key": key} for key in extra[start:start + DELETE_BATCH]]
        errors = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors", [])
        if errors:
            raise RollbackFailed(f"could not remove {len(errors)} files added under {prefix}: "
                                 + "; ".join(f"{error['Key']}: {error.get('Code')}" for error in errors[:10]))

    changed = [entry for key, entry in saved.items() if current.get(key, None) is None
               or current[key].version_id != entry.version_id]

    def copy_back(entry: SavedObject) -> None:
        s3.copy_object(Bucket=bucket, Key=entry.key,
                       CopySource={"Bucket": bucket, "Key": entry.key, "VersionId": entry.version_id})

    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        list(pool.map(copy_back, changed))

    after = current_objects(bucket, prefix)
    differences = sorted(
        key for key in set(after) | set(saved) if key not in after or key not in saved or after[key].etag != saved[key].etag
    )
    if differences:
        raise RollbackFailed(f"{prefix} still differs from its restore point after rollback: "
                             + ", ".join(differences[:20]))
    return RestoreResult(status="restored", prefix=prefix, restored=len(changed), removed=len(extra),
                         unchanged=len(saved) - len(changed))
