"""The request contract: what a caller sends.

`DeployRequest` is the one definition of it: the Parse step validates with it and the API's JSON schema is
generated from it (`api_json_schema`). It is pydantic, which costs a cold start about 100 ms to import: only Parse
(on its first request) and Recover load it. The documents the steps pass each other are in
`functions/shared/execution_state.py`.
"""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from functions.shared.execution_state import (
    COMMIT_FIELD, DEPLOYMENT_FIELD, DRY_RUN_FIELD, REPO_FIELD, WORKSPACE_FIELD,
)
from functions.shared.paths import (
    PATH_RULE, S3_RULE, S3_URI_PATTERN, SEGMENT_RE, SEGMENT_RULE, normalize_relative_path, split_s3_uri,
)

MAX_ENTRIES = 5000

Segment = Annotated[str, Field(pattern=f"^{SEGMENT_RE.pattern}$", min_length=1, max_length=64, description=SEGMENT_RULE)]
DagId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{1,250}$",
        max_length=250,
        description="Airflow's rule: letters, digits, _ . -, at most 250 characters",
    ),
]
Commit = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{4,64}$", max_length=64, description="the commit SHA (hex)")]


def _relative_path(value: str) -> str:
    return normalize_relative_path(value)


RelativePath = Annotated[str, Field(max_length=512, description=PATH_RULE), AfterValidator(_relative_path)]
# s3:// + a bucket name (at most 63) + / + a key (at most 1,024 characters).
S3_URI_MAX_LENGTH = 5 + 63 + 1 + 1024
S3Uri = Annotated[str, Field(pattern=S3_URI_PATTERN, max_length=S3_URI_MAX_LENGTH, description=S3_RULE)]



def _check_allowed_bucket(uri: str | None, info: ValidationInfo) -> str | None:
    # The allow-list is deployment configuration, handed in as validation context by the Parse step.
    allowed = (info.context or {}).get("source_buckets")
    if allowed is not None and uri is not None:
        bucket, _ = split_s3_uri(uri)
        if bucket not in allowed:
            raise ValueError(f"bucket {bucket!r} is not an allowed source (allowed: {', '.join(sorted(allowed))})")
    return uri


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class DagFile(_Strict):
    dag_id: DagId
    dag_file: S3Uri = Field(description="the DAG file (.py) in an allow-listed bucket")
    path: RelativePath | None = Field(
        default=None, description="relative path inside the repo; default: the file's name"
    )

    _allowed_source = field_validator("dag_file")(_check_allowed_bucket)

    @property
    def path_in_repo(self) -> str:
        return self.path or normalize_relative_path(split_s3_uri(self.dag_file)[1].rsplit("/", 1)[-1])

    @model_validator(mode="after")
    def _python_file(self) -> "DagFile":
        if not self.path_in_repo.endswith(".py"):
            raise ValueError(f"DAG file {self.path_in_repo!r} is not a .py file")
        return self


class Dependency(_Strict):
    source: S3Uri = Field(description="a supporting file (helper module, SQL, config) in an allow-listed bucket")
    path: RelativePath | None = Field(
        default=None, description="relative path inside the repo; default: the file's name"
    )

    _allowed_source = field_validator("source")(_check_allowed_bucket)

    @property
    def path_in_repo(self) -> str:
        return self.path or normalize_relative_path(split_s3_uri(self.source)[1].rsplit("/", 1)[-1])


class RequestBody(_Strict):
    dags: list[DagFile] = Field(default_factory=list, max_length=MAX_ENTRIES)
    dependencies: list[Dependency] = Field(default_factory=list, max_length=MAX_ENTRIES)
    source_prefix: S3Uri | None = Field(
        default=None,
        description="a folder whose whole tree becomes the repo's content; DAG files are found in it",
    )
    allow_empty_deployment: bool = Field(
        default=False,
        description="deploy even when the deployment ends up with no files at all (removes all its DAGs)",
    )

    _allowed_source = field_validator("source_prefix")(_check_allowed_bucket)

    @model_validator(mode="after")
    def _unique_paths(self) -> "RequestBody":
        seen: dict[str, int] = {}
        for entry in [*self.dags, *self.dependencies]:
            seen[entry.path_in_repo] = seen.get(entry.path_in_repo, 0) + 1
        duplicated = sorted(path for path, count in seen.items() if count > 1)
        if duplicated:
            raise ValueError(f"several files have the same path in the repo: {', '.join(duplicated[:20])}")
        return self


class DeployRequest(_Strict):
    """What a CI job sends: the original Lambda's event, plus optional dependencies, source_prefix and commit."""

    workspace: Segment = Field(alias=WORKSPACE_FIELD)
    deployment: Segment = Field(alias=DEPLOYMENT_FIELD)
    repo: Segment = Field(alias=REPO_FIELD)
    commit: Commit | None = Field(default=None, alias=COMMIT_FIELD)
    body: RequestBody
    dry_run: bool = Field(
        default=False, alias=DRY_RUN_FIELD,
        description="run every check and compare with what is live, change nothing",
    )
    force: bool = Field(default=False, description="ship even when the files are identical to what is live")


def api_json_schema() -> dict[str, Any]:
    """The request's JSON schema in the draft-04 form API Gateway validates with, every reference inlined.

    API Gateway resolves `$ref` only to other API models by URL, so the nested models are written in place.
    """
    schema = DeployRequest.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    inlined = _inline_references(schema, definitions)
    inlined["$schema"] = "http://json-schema.org/draft-04/schema#"
    return inlined


def _inline_references(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline_references(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        referenced = definitions[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _inline_references({**referenced, **siblings}, definitions)
    return {key: _inline_references(value, definitions) for key, value in node.items()}
