"""ClearPrefix: delete every object under exactly one repo's prefix, and the repo's archive.

The archive holds the prefix as the last ship read it: once the prefix changes it can serve no ship, and the next
one would download all of it only to find it stale. Removed, it costs that ship a miss instead; the ship then reads
the repo object by object and archives it again. It goes in the first delete batch with room for it (one request
more only when every batch is full). An archive that cannot be removed is left and said: a reader finds it stale,
so the push goes on.
"""

from functions.shared.aws import client
from functions.shared.errors import ClearPrefixFailed
from functions.shared.execution_state import ClearResult, RunScope
from functions.shared.paths import repo_archive_key, repo_prefix

DELETE_BATCH = 1000  # the most keys DeleteObjects takes


def _delete(s3, bucket: str, keys: list[str]) -> dict[str, str]:
    """Delete the keys in one request; return the refused ones, each with why."""
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
    return {error["Key"]: f"{error.get('Code')} {error.get('Message', '')}".strip()
            for error in response.get("Errors", [])}


def clear_repo_prefix(bucket: str, scope: RunScope) -> ClearResult:
    # The prefix is rebuilt from the validated names, never taken from the state: nothing else can be reached.
    prefix = repo_prefix(scope.workspace, scope.deployment, scope.repo)
    archive = repo_archive_key(scope.workspace, scope.deployment, scope.repo)
    s3 = client("s3")
    deleted = 0
    failures: dict[str, str] = {}
    archive_sent = False
    # Each listed page is deleted before the next is listed: a page holds at most 1,000 keys, one batch.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, MaxKeys=DELETE_BATCH):
        keys = [item["Key"] for item in page.get("Contents", [])]
        if not keys:
            continue
        with_archive = not archive_sent and len(keys) < DELETE_BATCH
        refused = _delete(s3, bucket, keys + [archive] if with_archive else keys)
        archive_sent = archive_sent or with_archive
        failures |= refused
        deleted += len(keys) - len(refused.keys() - {archive})
    if not archive_sent:
        failures |= _delete(s3, bucket, [archive])
    archive_left = failures.pop(archive, None)
    if failures:
        listed = [f"{key}: {reason}" for key, reason in failures.items()]
        shown = "; ".join(listed[:10])
        more = f" (and {len(listed) - 10} more)" if len(listed) > 10 else ""
        raise ClearPrefixFailed(f"{len(listed)} objects under {prefix} could not be deleted: {shown}{more}")
    return ClearResult(prefix=prefix, deleted=deleted, archive=archive,
                       archive_left=f"{archive_left}: the next ship finds it stale" if archive_left else None)
