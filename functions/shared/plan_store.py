"""The full plan lives in the DAG bucket; states carry a pointer to it (Step Functions caps payloads at 256 KiB).

So does the report of a request Parse refused: every problem, however many, while the error's message (which
becomes the state's and the execution's cause) shows the first ones and points here.
"""

import json
from dataclasses import field
from typing import Literal

from botocore.exceptions import ClientError

from functions.shared.aws import client
from functions.shared.documents import Document
from functions.shared.execution_state import NAME_FIELDS, RunScope
from functions.shared.paths import normalize_relative_path, parse_report_key, plan_key


class PlannedFile(Document):
    source_bucket: str
    source_key: str
    etag: str
    size: int
    path: str  # inside the repo
    kind: Literal["dag", "dependency"]
    dag_ids: list[str] = field(default_factory=list)
    # How S3 said the source is encrypted (its ServerSideEncryption answer); None when it did not say.
    server_side_encryption: str | None = None
    md5: str | None = None  # of the bytes Parse read (.py files), whatever the ETag is

    @property
    def checksum(self) -> str:
        """What tells this file's content from another's at the same path (functions/shared/manifest.py): its MD5
        when known, else S3's ETag, which changes whenever the object is written again."""
        if self.md5:
            return f"md5:{self.md5}"
        etag = self.etag.strip('"')
        return f"md5:{etag}" if self.etag_is_md5 else f"etag:{etag}"

    @property
    def etag_is_md5(self) -> bool:
        """Whether the ETag is the MD5 of the bytes, as a copy's ETag into the SSE-S3 DAG bucket is.

        Not for multipart uploads ("...-N") nor, as S3 documents, for SSE-KMS and DSSE-KMS objects.
        """
        return "-" not in self.etag and not (self.server_side_encryption or "").startswith("aws:kms")

    def __post_init__(self) -> None:
        # Checked again where the plan is read back: Upload writes to the repo prefix + this path.
        if normalize_relative_path(self.path) != self.path:
            raise ValueError(f"{self.path[:80]!r} is not a normalized path inside the repo")


class Plan(RunScope):
    """Everything Upload needs; stored in S3 because it can outgrow the state payload limit."""

    prefix: str
    allow_empty_deployment: bool = False
    dry_run: bool = False
    force: bool = False
    files: list[PlannedFile]


def save_plan(bucket: str, plan: Plan) -> str:
    key = plan_key(plan.execution)
    client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(plan.to_json()).encode(), ContentType="application/json"
    )
    return f"s3://{bucket}/{key}"


def load_plan(bucket: str, execution: str) -> Plan:
    # Found by execution name, not by a pointer from the state: a step reads only the plan Parse wrote for it.
    body = client("s3").get_object(Bucket=bucket, Key=plan_key(execution))["Body"].read()
    return Plan.from_json(json.loads(body))


REQUESTED_NAME_LIMIT = 256


class ParseReport(Document):
    """Why Parse refused a request: who it was for, as sent, and every problem."""

    execution: str
    requested: dict  # the request's name fields, as sent (RequestedNames.from_request reads them)
    error: str
    problems: list[str]

    @classmethod
    def of(cls, execution: str, request: object, error: Exception) -> "ParseReport":
        fields = request if isinstance(request, dict) else {}
        # Only the names: the request itself is in the execution's input.
        requested = {name: fields[name][:REQUESTED_NAME_LIMIT] for name in NAME_FIELDS if isinstance(fields.get(name), str)}
        problems = getattr(error, "problems", None) or [str(error)]
        return cls(execution=execution, requested=requested, error=type(error).__name__, problems=problems)


def parse_report_uri(bucket: str, execution: str) -> str:
    return f"s3://{bucket}/{parse_report_key(execution)}"


def save_parse_report(bucket: str, report: ParseReport) -> str:
    client("s3").put_object(
        Bucket=bucket, Key=parse_report_key(report.execution), Body=json.dumps(report.to_json()).encode(),
        ContentType="application/json",
    )
    return parse_report_uri(bucket, report.execution)


def load_parse_report(bucket: str, execution: str) -> ParseReport | None:
    """The report of Parse's refusal, or None when Parse wrote none (it succeeded, or failed before it could)."""
    try:
        body = client("s3").get_object(Bucket=bucket, Key=parse_report_key(execution))["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied", "403"):
            return None
        raise
    return ParseReport.from_json(json.loads(body))
