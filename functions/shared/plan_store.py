"""The full plan lives in the DAG bucket; states carry a pointer to it (Step Functions caps payloads at 256 KB)."""

import json
from dataclasses import field
from typing import Literal

from functions.shared.aws import client
from functions.shared.documents import Document, document
from functions.shared.execution_state import RunScope
from functions.shared.paths import normalize_relative_path, plan_key


@document
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


@document
class Plan(RunScope):
    """Everything Upload needs; stored in S3 because it can outgrow the state payload limit."""

    prefix: str
    allow_empty_deployment: bool = False
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
