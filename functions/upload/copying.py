"""Upload: server-side copies of the planned files into the repo prefix."""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

from botocore.exceptions import ClientError

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.errors import UploadFailed
from functions.shared.execution_state import UploadResult
from functions.shared.paths import repo_prefix
from functions.shared.plan_store import Plan, PlannedFile

SOURCE_CHANGED = "the source changed after Parse validated it"


def _copy(bucket: str, prefix: str, plan: Plan, entry: PlannedFile) -> str | None:
    """Copy one file; return why it failed, or None."""
    metadata = {"source": quote(f"s3://{entry.source_bucket}/{entry.source_key}"), "execution": plan.execution}
    if plan.commit:
        metadata["commit"] = plan.commit
    try:
        response = client("s3").copy_object(
            Bucket=bucket,
            Key=prefix + entry.path,
            # IfMatch: the bytes copied are the bytes Parse validated, even if the source changed since.
            CopySource={"Bucket": entry.source_bucket, "Key": entry.source_key},
            CopySourceIfMatch=entry.etag,
            Metadata=metadata,
            MetadataDirective="REPLACE",
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        reason = SOURCE_CHANGED if code == "PreconditionFailed" else code
        return f"{entry.path}: {reason}"
    copied_etag = response["CopyObjectResult"]["ETag"]
    # Checked again after the copy for stores that ignore IfMatch, where both ETags are MD5s of the bytes.
    if entry.etag_is_md5 and copied_etag != entry.etag:
        return f"{entry.path}: {SOURCE_CHANGED}"
    return None


def upload_plan(bucket: str, plan: Plan) -> UploadResult:
    prefix = repo_prefix(plan.workspace, plan.deployment, plan.repo)
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        outcomes = list(pool.map(lambda entry: _copy(bucket, prefix, plan, entry), plan.files))
    failures = [outcome for outcome in outcomes if outcome]
    if failures:
        shown = "; ".join(failures[:10])
        more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
        raise UploadFailed(f"{len(failures)} of {len(plan.files)} files could not be copied: {shown}{more}")
    return UploadResult(prefix=prefix, copied=len(plan.files), bytes=sum(entry.size for entry in plan.files))
