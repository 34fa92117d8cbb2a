"""What the deployment's other repos have live in the DAG bucket: their files and the dag_ids Airflow will load.

One function (`read_live_repos`) answers it. Every object under the deployment's prefix is listed (the paths, for
imports); a repo's dag_ids come from its manifest (functions/shared/manifest.py, one read) while the manifest's
copies are exactly the repo's objects, else from its files themselves: only `.py` files (and `.airflowignore`, to
know which Airflow parses) are read.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import field

from botocore.exceptions import ClientError

from functions.shared.aws import MAX_WORKERS, client
from functions.shared.dag_discovery import IGNORE_FILE, IgnoreRules, might_contain_dag
from functions.shared.dag_source import inspect_dag_source
from functions.shared.documents import InvalidDocument
from functions.shared.manifest import read_repo_manifest, stored_files
from functions.shared.paths import deployment_prefix
from functions.shared.records import FrozenRecord, Record

# Past this a live file is not read: Parse refuses larger sources, so none should be there.
MAX_LIVE_PYTHON_BYTES = 5 * 1024 * 1024


class LiveDagFile(FrozenRecord):
    repo: str
    path: str  # in the repo
    dag_ids: tuple[str, ...]
    commit: str | None  # the commit the file was shipped from (its object metadata)


class LiveRepo(Record):
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


def _from_manifest(bucket: str, workspace: str, deployment: str, repo: str, stored: dict[str, str]
                   ) -> list[LiveDagFile] | None:
    """The repo's DAG files as its manifest records them, if its copies are still exactly the repo's objects."""
    try:
        manifest = read_repo_manifest(bucket, workspace, deployment, repo)
    except (ClientError, InvalidDocument):
        # A repo deployed before manifests were recorded reads as AccessDenied (ListBucket is bounded to dags/):
        # its files say the same.
        return None
    if manifest is None or manifest.stored() != stored:
        return None
    return [LiveDagFile(repo, entry.path, tuple(entry.dag_ids), manifest.commit)
            for entry in manifest.files if entry.dag_ids]


def _from_files(bucket: str, prefix: str, repo: str, paths: list[str]) -> list[LiveDagFile]:
    ignore_texts = {}
    for path in paths:
        if path.rsplit("/", 1)[-1] == IGNORE_FILE:
            read = _read(bucket, f"{prefix}{repo}/{path}")
            ignore_texts[path] = read[0].decode("utf-8", "replace") if read else ""
    rules = IgnoreRules(ignore_texts)
    python_files = [path for path in paths if path.endswith(".py") and rules.ignored_by(path) is None]
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        found = pool.map(lambda path: _dag_file(bucket, prefix, repo, path), python_files)
        return [dag_file for dag_file in found if dag_file]


def read_live_repos(bucket: str, workspace: str, deployment: str, except_repo: str,
                    listed: dict[str, dict[str, str]] | None = None) -> list[LiveRepo]:
    """The deployment's live repos other than `except_repo` (the one being replaced), sorted by name; from
    `listed` (`stored_files` of the deployment) when the caller has listed it already."""
    prefix = deployment_prefix(workspace, deployment)
    if listed is None:
        listed = stored_files(bucket, workspace, deployment)
    stored = {repo: files for repo, files in listed.items() if repo != except_repo}

    def live_repo(repo: str) -> LiveRepo:
        paths = sorted(stored[repo])
        dag_files = _from_manifest(bucket, workspace, deployment, repo, stored[repo])
        return LiveRepo(repo, paths, dag_files if dag_files is not None else _from_files(bucket, prefix, repo, paths))

    return [live_repo(repo) for repo in sorted(stored)]
