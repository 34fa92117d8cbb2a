"""What the deployment's other repos have live in the DAG bucket: their files and the dag_ids Airflow will load.

One function (`read_live_repos`) answers it, from the live files themselves: every object under the deployment's
prefix is listed, and only `.py` files (and `.airflowignore`, to know which Airflow parses) are read. A manifest
of what is live can answer the same question with one read; this is the place to switch to it.
"""

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.dag_discovery import IGNORE_FILE, IgnoreRules, might_contain_dag
from functions.shared.dag_source import inspect_dag_source
from functions.shared.paths import deployment_prefix, is_segment

# Past this a live file is not read: Parse refuses larger sources, so none should be there.
MAX_LIVE_PYTHON_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class LiveDagFile:
    repo: str
    path: str  # in the repo
    dag_ids: tuple[str, ...]
    commit: str | None  # the commit the file was shipped from (its object metadata)


@dataclass
class LiveRepo:
    name: str
    paths: list[str] = field(default_factory=list)  # every file, in the repo
    dag_files: list[LiveDagFile] = field(default_factory=list)  # the files Airflow parses that define DAGs


def _read(bucket: str, key: str) -> tuple[bytes, dict] | None:
    response = client("s3").get_object(Bucket=bucket, Key=key)
    if response["ContentLength"] > MAX_LIVE_PYTHON_BYTES:
        response["Body"].close()
        return None
    return response["Body"].read(), response.get("Metadata", {})


def _dag_file(bucket: str, prefix: str, repo: str, path: str) -> LiveDagFile | None:
    read = _read(bucket, f"{prefix}{repo}/{path}")
    if read is None or not might_contain_dag(read[0]):
        return None
    try:
        found = inspect_dag_source(read[0], path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # a live file that does not compile defines no DAG in Airflow either
    if not found.dag_ids:
        return None
    return LiveDagFile(repo, path, tuple(found.dag_ids), read[1].get("commit"))


def read_live_repos(bucket: str, workspace: str, deployment: str, except_repo: str) -> list[LiveRepo]:
    """The deployment's live repos other than `except_repo` (the one being replaced), sorted by name."""
    prefix = deployment_prefix(workspace, deployment)
    repos: dict[str, LiveRepo] = {}
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            repo, _, path = item["Key"][len(prefix):].partition("/")
            if repo != except_repo and is_segment(repo) and path:
                repos.setdefault(repo, LiveRepo(repo)).paths.append(path)
    ignore_texts: dict[str, dict[str, str]] = defaultdict(dict)
    python_files: list[tuple[str, str]] = []
    for repo in repos.values():
        for path in repo.paths:
            if path.rsplit("/", 1)[-1] == IGNORE_FILE:
                read = _read(bucket, f"{prefix}{repo.name}/{path}")
                ignore_texts[repo.name][path] = read[0].decode("utf-8", "replace") if read else ""
        rules = IgnoreRules(ignore_texts[repo.name])
        python_files += [(repo.name, path) for path in repo.paths
                         if path.endswith(".py") and rules.ignored_by(path) is None]
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        found = pool.map(lambda entry: _dag_file(bucket, prefix, *entry), python_files)
        for dag_file in found:
            if dag_file:
                repos[dag_file.repo].dag_files.append(dag_file)
    return sorted(repos.values(), key=lambda repo: repo.name)
