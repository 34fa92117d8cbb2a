"""Deploy: gather every repo of a deployment from the DAG bucket into one folder, as `<repo>/<relative path>`.

An Astro DAG-only deploy replaces all DAGs of a deployment, so the bundle holds every repo prefix under
`dags/{workspace}/{deployment}/`, never only the repo that triggered the run.
"""

import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.errors import BundleFailed
from functions.shared.paths import deployment_prefix, is_segment, normalize_relative_path

SHOWN_PROBLEMS = 10
COPY_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BundleFile:
    key: str
    path: str  # `<repo>/<relative path>`, validated: it stays inside the bundle folder


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


def list_bundle(bucket: str, workspace: str, deployment: str) -> list[BundleFile]:
    """Every object of the deployment with the path it takes in the bundle; raises BundleFailed on unsafe keys."""
    # The prefix ends with "/": deployment "dep" never reads "dep2"'s objects.
    prefix = deployment_prefix(workspace, deployment)
    files: list[BundleFile] = []
    problems: list[str] = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if relative.endswith("/") and item["Size"] == 0:
                continue  # a folder marker (the S3 console's "Create folder"): no content to ship
            repo, _, inside = relative.partition("/")
            if not is_segment(repo) or not inside:
                problems.append(f"{item['Key']}: not inside a repo folder")
                continue
            try:
                files.append(BundleFile(key=item["Key"], path=f"{repo}/{normalize_relative_path(inside)}"))
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


def gather_bundle(bucket: str, workspace: str, deployment: str, folder: Path) -> Bundle:
    """Download every file of the deployment into `folder` (created, maybe left empty) concurrently."""
    files = list_bundle(bucket, workspace, deployment)
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
        repos=sorted({entry.path.split("/", 1)[0] for entry in files}),
    )
