"""A local folder of DAG files as a deploy request in the original contract.

Each `.py` file that defines a DAG becomes a `dags` entry (its first literal dag_id, else the file's stem, and its
relative path); every other file, helper modules included, a `dependencies` entry with its relative path.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from astro_dag_deploy.folder import UPLOAD_WORKERS, folder_files
from functions.shared.dag_source import inspect_dag_source


@dataclass(frozen=True)
class FolderFile:
    """A file of the folder: where it is relative to the folder, and what it holds for Airflow."""

    path: str
    dag_id: str | None  # None: not a DAG file
    problem: str | None = None  # why Python would not import it, for a .py file


def inspect_file(path: str, content: bytes) -> FolderFile:
    if not path.endswith(".py"):
        return FolderFile(path, None)
    try:
        found = inspect_dag_source(content, path)
    except SyntaxError as error:
        # Sent as a plain file all the same: Parse compiles it and, if Airflow would run it, refuses the request naming it.
        return FolderFile(path, None, f"does not compile: {error.msg} (line {error.lineno})")
    except (ValueError, RecursionError) as error:
        return FolderFile(path, None, f"does not compile: {error}")
    if not found.defines_dag:
        return FolderFile(path, None)
    return FolderFile(path, found.dag_ids[0] if found.dag_ids else Path(path).stem)


def upload_folder(folder: Path, put: Callable[[str, bytes], None]) -> list[FolderFile]:
    """Read every file of the folder, hand it to `put(relative_path, content)` (in parallel), and inspect it."""

    def upload(path: str) -> FolderFile:
        content = (folder / path).read_bytes()
        put(path, content)
        return inspect_file(path, content)

    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        return list(pool.map(upload, folder_files(folder)))


def deploy_request(
    workspace: str, deployment: str, repo: str, commit: str | None, files: list[FolderFile], base_uri: str
) -> dict:
    """The request for `files`, uploaded under `base_uri` (s3://bucket/key-prefix, no trailing slash)."""
    dags, dependencies = [], []
    for entry in files:
        uri = f"{base_uri}/{entry.path}"
        if entry.dag_id is None:
            dependencies.append({"source": uri, "path": entry.path})
        else:
            dags.append({"dag_id": entry.dag_id, "dag_file": uri, "path": entry.path})
    request: dict = {"astroWorkspace": workspace, "astroDeployment": deployment, "repo": repo}
    if commit:
        request["commit"] = commit
    return {**request, "body": {"dags": dags, "dependencies": dependencies}}
