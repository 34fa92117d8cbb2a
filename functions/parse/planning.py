"""Parse: validate a request completely and turn it into a plan, before anything in the DAG bucket changes.

The request model is pydantic, some 100 ms to import: it is loaded on the first request (`validate_request`), not
by the import of the handler, which every cold start pays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from functions.parse.airflow_view import PythonSource, airflow_view
from functions.shared.astro_targets import resolve_astro_target
from functions.shared.aws import MAX_WORKERS, client
from functions.shared.bundle_layout import BundleLayout
from functions.shared.dag_discovery import IGNORE_FILE, might_contain_dag
from functions.shared.dag_source import inspect_dag_source
from functions.shared.dag_bundles import MAIN_BUNDLE, UnmappableRepo, lock_key
from functions.shared.errors import PROBLEM_LIMIT, AstroConfigError, InvalidRequest, shortened
from functions.shared.execution_state import PlanSummary, RefusedDryRun
from functions.shared.live_repos import read_live_repos
from functions.shared.manifest import stored_listing
from functions.shared.paths import (
    PATH_RULE, normalize_relative_path, repo_prefix, split_s3_uri,
)
from functions.shared.plan_store import Plan, PlannedFile
from functions.shared.records import Record

if TYPE_CHECKING:
    from pydantic import ValidationError

    from functions.shared.astro_targets import AstroTarget
    from functions.shared.models import DeployRequest

MAX_FILES = 10_000
MAX_PYTHON_BYTES = 5 * 1024 * 1024
# What one CopyObject copies: Upload copies each file in one request.
MAX_COPY_BYTES = 5 * 1024**3
SUMMARY_LIST_LIMIT = 20
MAX_CAUSE_CHARACTERS = 30_000


class Candidate(Record):
    """A file the request asks for, before its source has been read."""

    bucket: str
    key: str
    path: str
    kind: str  # "dag", "dependency", or "found" (from source_prefix: a DAG if its code defines one)
    declared_dag_id: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def validation_problems(error: ValidationError) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False):
        location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{location.lstrip('.') or 'request'}: {message}")
    return problems


def validate_request(raw: object, source_buckets: frozenset[str]) -> DeployRequest:
    # Imported on the first request, not with the handler (see above).
    from pydantic import ValidationError

    from functions.shared.models import DeployRequest

    try:
        return DeployRequest.model_validate(raw, context={"source_buckets": source_buckets})
    except ValidationError as error:
        raise InvalidRequest(validation_problems(error)) from None


def _declared_candidates(request: DeployRequest) -> list[Candidate]:
    candidates = []
    for dag in request.body.dags:
        bucket, key = split_s3_uri(dag.dag_file)
        candidates.append(Candidate(bucket, key, dag.path_in_repo, "dag", dag.dag_id))
    for dependency in request.body.dependencies:
        bucket, key = split_s3_uri(dependency.source)
        candidates.append(Candidate(bucket, key, dependency.path_in_repo, "dependency"))
    return candidates


def _prefix_candidates(source_prefix: str, problems: list[str]) -> list[Candidate]:
    bucket, prefix = split_s3_uri(source_prefix)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    candidates = []
    pages = client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    try:
        for page in pages:
            for item in page.get("Contents", []):
                if len(candidates) >= MAX_FILES:
                    problems.append(f"source_prefix holds more than {MAX_FILES} files")
                    return candidates
                relative = item["Key"][len(prefix):]
                try:
                    path = normalize_relative_path(relative)
                except ValueError as reason:
                    problems.append(f"source_prefix file {relative[:80]!r}: {reason} ({PATH_RULE})")
                    continue
                kind = "found" if path.endswith(".py") else "dependency"
                candidates.append(Candidate(bucket, item["Key"], path, kind))
    except ClientError as error:
        problems.append(f"source_prefix s3://{bucket}/{prefix} cannot be listed: {_s3_reason(error)}")
    if not candidates and not problems:
        problems.append(f"source_prefix s3://{bucket}/{prefix} holds no files")
    return candidates


def _s3_reason(error: ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "404", "NotFound"):
        return "it does not exist"
    if code in ("AccessDenied", "403", "Forbidden"):
        return "access denied"
    if code == "NoSuchBucket":
        return "the bucket does not exist"
    raise error


# What Parse reads of a file besides its plan entry: a `.py` file's code, an `.airflowignore`'s text.
Read = PythonSource | str | None


def _inspect(candidate: Candidate) -> tuple[PlannedFile | None, list[str], list[str], Read]:
    """Read one source; return its plan entry, the problems it has, warnings, and what Parse read of it."""
    s3 = client("s3")
    is_ignore_file = candidate.path.rsplit("/", 1)[-1] == IGNORE_FILE
    try:
        if not candidate.path.endswith(".py") and not is_ignore_file:
            head = s3.head_object(Bucket=candidate.bucket, Key=candidate.key)
            entry = PlannedFile(
                source_bucket=candidate.bucket, source_key=candidate.key, etag=head["ETag"],
                size=head["ContentLength"], path=candidate.path, kind="dependency",
                server_side_encryption=head.get("ServerSideEncryption"),
            )
            return entry, [], [], None
        response = s3.get_object(Bucket=candidate.bucket, Key=candidate.key)
        if response["ContentLength"] > MAX_PYTHON_BYTES:
            response["Body"].close()
            return None, [f"{candidate.path}: {candidate.uri} is larger than {MAX_PYTHON_BYTES} bytes"], [], None
        code = response["Body"].read()
    except ClientError as error:
        return None, [f"{candidate.path}: cannot read {candidate.uri}: {_s3_reason(error)}"], [], None
    entry = PlannedFile(
        source_bucket=candidate.bucket, source_key=candidate.key, etag=response["ETag"],
        size=response["ContentLength"], path=candidate.path, kind="dependency",
        server_side_encryption=response.get("ServerSideEncryption"),
        md5=hashlib.md5(code, usedforsecurity=False).hexdigest(),
    )
    if is_ignore_file:
        return entry, [], [], code.decode("utf-8", "replace")
    declared = candidate.kind == "dag"
    try:
        found = inspect_dag_source(code, candidate.path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        reason = f"{error.msg} (line {error.lineno})" if isinstance(error, SyntaxError) else str(error)
        # A declared DAG file must compile; whether another file may not depends on whether Airflow runs it
        # (functions/parse/airflow_view.py).
        problems = [f"{candidate.path}: does not compile: {reason}"] if declared else []
        return entry, problems, [], PythonSource(candidate.path, declared, might_contain_dag(code), None, reason)
    problems, warnings = [], []
    if candidate.kind == "dag" and not found.defines_dag:
        problems.append(f"{candidate.path}: declared as a DAG file but defines no DAG ({candidate.uri})")
    elif candidate.declared_dag_id and candidate.declared_dag_id not in found.dag_ids:
        warnings.append(
            f"{candidate.path}: dag_id {candidate.declared_dag_id!r} is not defined literally in the file "
            f"(found: {', '.join(found.dag_ids) or 'none'}); fine if it is computed"
        )
    return entry, problems, warnings, PythonSource(candidate.path, declared, might_contain_dag(code), found)


def _duplicate_problems(candidates: Iterable[Candidate]) -> list[str]:
    seen: dict[str, Candidate] = {}
    problems = []
    for candidate in candidates:
        if candidate.path in seen:
            problems.append(
                f"{candidate.path}: the path of both {seen[candidate.path].uri} and {candidate.uri}"
            )
        else:
            seen[candidate.path] = candidate
    return problems


def _limited(items: list[str]) -> list[str]:
    # The summary becomes the state: a bounded number of bounded items.
    shown = [shortened(item, PROBLEM_LIMIT) for item in items[:SUMMARY_LIST_LIMIT]]
    if len(items) <= SUMMARY_LIST_LIMIT:
        return shown
    return [*shown, f"... and {len(items) - SUMMARY_LIST_LIMIT} more (see the plan)"]


def _bundle_problems(request: DeployRequest, target: AstroTarget, live_repos: Iterable[str] | None
                     ) -> tuple[str, list[str]]:
    """The bundle the repo ships to, and why it cannot: a name that maps to none, or another repo's bundle (of the
    `live_repos`, when known)."""
    try:
        bundle = target.bundle(request.repo)
    except UnmappableRepo as error:
        return MAIN_BUNDLE, [str(error)]
    if bundle == MAIN_BUNDLE or live_repos is None:
        return bundle, []
    problems = []
    for other in sorted(live_repos):
        try:
            clash = other != request.repo and target.bundle(other) == bundle
        except UnmappableRepo:
            continue
        if clash:
            problems.append(
                f"repo {request.repo!r} and repo {other!r} (already deployed) both map to Dag bundle {bundle!r}: "
                f'name one of them in cdk.json: "bundleNames": {{"{request.repo}": "<another bundle name>"}}'
            )
    return bundle, problems


def size_problems(files: list[PlannedFile], bundle_limit_bytes: int | None, other_repos_bytes: int = 0
                  ) -> list[str]:
    """What could never ship: a file larger than one CopyObject copies (Upload) or than the room a bundle has
    (`bundle_limit_bytes`: half of what the kept bundles leave of the Deploy function's ephemeral storage, where the
    bundle is gathered and the CLI writes its bundle.tar, at least as large, beside it), and the bundle larger than
    that room: the repo's files with what the other repos of its bundle hold (`other_repos_bytes`)."""
    room = (f"the {bundle_limit_bytes} bytes a bundle has in the Deploy function's ephemeral storage (half of what "
            "the bundles kept for the next ships leave: the CLI writes bundle.tar beside the gathered files)")
    if bundle_limit_bytes is not None and bundle_limit_bytes < MAX_COPY_BYTES:
        file_limit, where = bundle_limit_bytes, room
    else:
        file_limit, where = MAX_COPY_BYTES, f"the {MAX_COPY_BYTES} bytes S3 copies in one CopyObject (Upload's copy)"
    problems = [f"{entry.path}: {entry.size} bytes, more than {where}: it could never ship"
                for entry in files if entry.size > file_limit]
    own = sum(entry.size for entry in files)
    if bundle_limit_bytes is not None and own + other_repos_bytes > bundle_limit_bytes:
        others = f" and the other repos of its Dag bundle hold {other_repos_bytes}" if other_repos_bytes else ""
        problems.append(f"the repo's {len(files)} files come to {own} bytes{others}: {own + other_repos_bytes} bytes, "
                        f"more than {room}: the bundle could never ship")
    return problems


def build_plan(
    raw_request: object, execution: str, source_buckets: frozenset[str],
    astro_targets: Mapping[str, object] | None = None, dag_bucket: str | None = None,
    bundle_limit_bytes: int | None = None,
) -> tuple[Plan, list[str]]:
    """Validate everything (format, allow-list, Astro target and Dag bundle, paths, sources, Python syntax, sizes).

    `astro_targets`: the configured entries, else the stack's (functions/shared/astro_targets.py).
    `dag_bucket` is where the deployment's other repos live: given, a per-repo bundle name they already use is
    refused. `bundle_limit_bytes`: the room a bundle has in Deploy (`size_problems`).

    Returns the plan and warnings; raises InvalidRequest listing every problem found.
    """
    request = validate_request(raw_request, source_buckets)
    # One listing of the deployment: the repos a per-repo bundle name may clash with, then what is live.
    listed, stored_bytes = (stored_listing(dag_bucket, request.workspace, request.deployment) if dag_bucket
                            else (None, {}))
    problems: list[str] = []
    bundle = MAIN_BUNDLE
    try:
        # Checked here so that an unconfigured deployment fails before the repo's prefix is touched.
        target = resolve_astro_target(request.workspace, request.deployment, astro_targets)
    except AstroConfigError as error:
        problems.append(str(error))
    else:
        bundle, bundle_problems = _bundle_problems(request, target, listed)
        problems += bundle_problems
    candidates = _declared_candidates(request)
    if request.body.source_prefix:
        candidates += _prefix_candidates(request.body.source_prefix, problems)
    problems += _duplicate_problems(candidates)
    if problems:
        raise InvalidRequest(problems)

    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        results = list(pool.map(_inspect, candidates))
    files, warnings, sources, ignore_files = [], [], [], {}
    for entry, entry_problems, entry_warnings, read in results:
        problems += entry_problems
        warnings += entry_warnings
        if entry:
            files.append(entry)
        if isinstance(read, PythonSource):
            sources.append(read)
        elif isinstance(read, str):
            ignore_files[entry.path] = read
    # The main bundle holds every repo of the deployment; a per-repo bundle, this repo alone.
    other_repos_bytes = sum(size for repo, size in stored_bytes.items() if repo != request.repo) if (
        bundle == MAIN_BUNDLE) else 0
    problems += size_problems(files, bundle_limit_bytes, other_repos_bytes)
    if problems:
        raise InvalidRequest(problems)

    # The deployment as Airflow will load it: which files it parses, their imports, their dag_ids.
    live = (read_live_repos(dag_bucket, request.workspace, request.deployment, request.repo, listed)
            if dag_bucket else [])
    layout = BundleLayout(
        mode=target.dag_bundles, repo=request.repo, own_paths=frozenset(entry.path for entry in files),
        other_repos={repo.name: repo.paths for repo in live}, installed=target.installed_packages,
    )
    view = airflow_view(layout, sources, ignore_files, live)
    warnings += view.warnings
    if view.problems:
        raise InvalidRequest(view.problems)
    found = {source.path: source.found for source in sources}
    for entry in files:
        if entry.path in view.dag_files:
            entry.kind, entry.dag_ids = "dag", list(found[entry.path].dag_ids)

    plan = Plan(
        workspace=request.workspace, deployment=request.deployment, repo=request.repo, commit=request.commit,
        execution=execution, prefix=repo_prefix(request.workspace, request.deployment, request.repo), bundle=bundle,
        allow_empty_deployment=request.body.allow_empty_deployment, dry_run=request.dry_run, force=request.force,
        files=sorted(files, key=lambda entry: entry.path),
    )
    return plan, warnings


def summarize(plan: Plan, plan_uri: str, warnings: list[str]) -> PlanSummary:
    dag_ids = [dag_id for entry in plan.files for dag_id in entry.dag_ids]
    return PlanSummary(
        workspace=plan.workspace, deployment=plan.deployment, repo=plan.repo, commit=plan.commit,
        execution=plan.execution, bundle=plan.bundle, prefix=plan.prefix, plan=plan_uri, files=len(plan.files),
        bytes=sum(entry.size for entry in plan.files),
        dag_count=sum(1 for entry in plan.files if entry.kind == "dag"), dag_ids=_limited(dag_ids),
        lock_key=lock_key(plan.workspace, plan.deployment, plan.bundle),
        allow_empty_deployment=plan.allow_empty_deployment, warnings=_limited(warnings), dry_run=plan.dry_run,
        force=plan.force,
    )


def refused_dry_run(refusal: InvalidRequest) -> RefusedDryRun:
    # Bounded: the state carries it, and a Fail state's cause holds at most 32,768 characters.
    return RefusedDryRun(error=type(refusal).__name__, cause=str(refusal)[:MAX_CAUSE_CHARACTERS],
                         problems=_limited(refusal.problems))
