"""The files of a DAG folder as a CI job uploads them: every file but Git's and Python's caches."""

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__", ".git"})
SKIPPED_SUFFIXES = (".pyc",)
UPLOAD_WORKERS = 16


def folder_files(folder: Path) -> list[str]:
    """Every file under the folder as a sorted relative POSIX path, without Git's and Python's caches."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED_DIRS)
        relative_root = Path(root).relative_to(folder)
        found += [(relative_root / name).as_posix() for name in sorted(files) if not name.endswith(SKIPPED_SUFFIXES)]
    return found


def upload_files(folder: Path, paths: list[str], put: Callable[[str, bytes], None]) -> None:
    """Hand each file of the folder to `put(relative_path, content)`, in parallel."""

    def upload(path: str) -> None:
        put(path, (folder / path).read_bytes())

    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        list(pool.map(upload, paths))
