"""ClearPrefix: delete every object under exactly one repo's prefix."""

from functions.shared.aws import client
from functions.shared.errors import ClearPrefixFailed
from functions.shared.execution_state import ClearResult, RunScope
from functions.shared.paths import repo_prefix

DELETE_BATCH = 1000  # the most keys DeleteObjects takes


def clear_repo_prefix(bucket: str, scope: RunScope) -> ClearResult:
    # The prefix is rebuilt from the validated names, never taken from the state: nothing else can be reached.
    prefix = repo_prefix(scope.workspace, scope.deployment, scope.repo)
    s3 = client("s3")
    deleted = 0
    failures: list[str] = []
    # Each listed page is deleted before the next is listed: a page holds at most 1,000 keys, one batch.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, MaxKeys=DELETE_BATCH):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if not keys:
            continue
        response = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        errors = response.get("Errors", [])
        failures += [f"{error['Key']}: {error.get('Code')} {error.get('Message', '')}".strip() for error in errors]
        deleted += len(keys) - len(errors)
    if failures:
        shown = "; ".join(failures[:10])
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        raise ClearPrefixFailed(f"{len(failures)} objects under {prefix} could not be deleted: {shown}{more}")
    return ClearResult(prefix=prefix, deleted=deleted)
