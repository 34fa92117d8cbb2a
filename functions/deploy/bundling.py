"""Deploy: gather what a Dag bundle holds from the DAG bucket into one folder.

An Astro DAG-only deploy replaces all DAGs of the bundle it ships to. The deployment's `main` bundle holds every repo
prefix under `dags/{workspace}/{deployment}/`, as `<repo>/<relative path>`, never only the repo that triggered the
run; a per-repo bundle holds its repo's prefix alone, as `<relative path>` (the repo's root is the bundle's root).
"""

import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.errors import BundleFailed
from functions.shared.paths import deployment_prefix, is_segment, normalize_relative_path, repo_prefix

SHOWN_PROBLEMS = 10
COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    key: str
    path: str  # `<repo>/<relative path>` (or `<relative path>` for one repo), validated: it stays inside the folder


@dataclass(frozen=True)
class Bundle:
    files: int
    bytes: int
    python_files: int
    repos: list[str]


def _problem_summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return shown + more


def list_bundle(bucket: str, workspace: str, deployment: str, repo: str | None = None) -> list[BundleFile]:
    """Every object of the deployment (or of its one repo) with the path it takes in the bundle; raises
    BundleFailed on unsafe keys."""
    # The prefix ends with "/": deployment "dep" never reads "dep2"'s objects, repo "a" never "a2"'s.
    prefix = repo_prefix(workspace, deployment, repo) if repo else deployment_prefix(workspace, deployment)
    files: list[BundleFile] = []
    problems: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if (not relative or relative.endswith("/")) and item["Size"] == 0:
                continue  # a folder marker (the S3 console's "Create folder"): no content to ship
            if repo:
                folder, inside = repo, relative
            else:
                folder, _, inside = relative.partition("/")
            if not is_segment(folder) or not inside:
                problems.append(f"{item['Key']}: not inside a repo folder")
                continue
            try:
                path = normalize_relative_path(inside)
                files.append(BundleFile(key=item["Key"], path=path if repo else f"{folder}/{path}"))
            except ValueError as reason:
                problems.append(f"{item['Key']}: {reason}")
    problems += _clashes(files)
    if problems:
        raise BundleFailed(
            f"{len(problems)} objects under s3://{bucket}/{prefix} cannot be shipped safely (remove them from the "
            f"DAG bucket, or redeploy their repo): {_problem_summary(problems)}"
        )
    return files


def _clashes(files: list[BundleFile]) -> list[str]:
    """Keys that would land on the same file, or on a file that another key needs as a folder."""
    owners: dict[str, str] = {}
    problems = []
    for entry in files:
        if entry.path in owners:
            problems.append(f"{entry.key}: lands on the same file as {owners[entry.path]}")
        else:
            owners[entry.path] = entry.key
    for entry in files:
        for parent in PurePosixPath(entry.path).parents:
            if str(parent) in owners:
                problems.append(f"{entry.key}: needs {parent} as a folder, but {owners[str(parent)]} is a file there")
    return problems


def _download(bucket: str, entry: BundleFile, folder: Path) -> tuple[int, str | None]:
    """Write one object into the bundle; return its size and why it failed, or None."""
    destination = folder / entry.path
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        body = client("s3").get_object(Bucket=bucket, Key=entry.key)["Body"]
        with closing(body), destination.open("wb") as file:
            shutil.copyfileobj(body, file, COPY_CHUNK_BYTES)
        return destination.stat().st_size, None
    except ClientError as error:
        return 0, f"{entry.key}: {error.response.get('Error', {}).get('Code', 'unknown error')}"
    except OSError as error:
        return 0, f"{entry.key}: {error.strerror or error} (is the function's ephemeral storage large enough?)"


def gather_bundle(bucket: str, workspace: str, deployment: str, folder: Path, repo: str | None = None) -> Bundle:
    """Download every file of the deployment, or of its one `repo`, into `folder` (created, maybe left empty)
    concurrently."""
    files = list_bundle(bucket, workspace, deployment, repo)
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        outcomes = list(pool.map(lambda entry: _download(bucket, entry, folder), files))
    failures = [failure for _, failure in outcomes if failure]
    if failures:
        raise BundleFailed(
            f"{len(failures)} of {len(files)} files could not be downloaded from s3://{bucket}: "
            f"{_problem_summary(failures)}"
        )
    return Bundle(
        files=len(files),
        bytes=sum(size for size, _ in outcomes),
        python_files=sum(1 for entry in files if entry.path.endswith(".py")),
        repos=[repo] if repo else sorted({entry.path.split("/", 1)[0] for entry in files}),
    )
