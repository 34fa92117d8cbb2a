"""Deploy: gather what a Dag bundle holds from the DAG bucket into one folder.

An Astro DAG-only deploy replaces all DAGs of the bundle it ships to. The deployment's `main` bundle holds every repo
prefix under `dags/{workspace}/{deployment}/`, as `<repo>/<relative path>`, never only the repo that triggered the
run; a per-repo bundle holds its repo's prefix alone, as `<relative path>` (the repo's root is the bundle's root).

What a bundle holds is the listing of its prefix, always; how the bytes arrive: left in place from the last ship's
bundle when unchanged (functions/deploy/warm_bundle.py), else from each repo's archive when it holds exactly the
repo's listing (one GET per repo, functions/shared/repo_archive.py), else the repo's objects one by one. A repo read
object by object gets its archive written from its files in the bundle, so that the next ship reads it with one GET;
that write failing is reported, never fails the ship.
"""

import os
import shutil
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import field
from pathlib import Path, PurePosixPath

from botocore.exceptions import ClientError

from functions.deploy.warm_bundle import WrittenFile, remove_all_but, written_file
from functions.shared.aws import MAX_WORKERS, client
from functions.shared.errors import BundleFailed
from functions.shared.execution_state import RepoArchive
from functions.shared.observability import step_logger
from functions.shared.paths import deployment_prefix, is_segment, normalize_relative_path, repo_prefix
from functions.shared.records import FrozenRecord
from functions.shared.repo_archive import (
    DownloadedFile,
    ListedObject,
    StaleArchive,
    copy_member,
    listed_objects,
    matching_archive,
    refresh_repo_archive,
)

logger = step_logger("deploy")

SHOWN_PROBLEMS = 10
COPY_CHUNK_BYTES = 1024 * 1024


class BundleFile(FrozenRecord):
    path: str  # `<repo>/<relative path>` (or `<relative path>` for one repo), validated: it stays inside the folder
    repo: str
    source: ListedObject  # the object, listed below its repo prefix

    @property
    def key(self) -> str:
        return self.source.key


class Bundle(FrozenRecord):
    files: int
    bytes: int
    python_files: int
    repos: list[str]
    archived_repos: list[str] = field(default_factory=list)  # gathered from their archive, one GET each
    archives: list[RepoArchive] = field(default_factory=list)  # written for the repos read object by object
    # What the gathering listed: repo -> path below its prefix -> ETag (the bundle's ship record, without a second
    # listing of the deployment).
    stored: dict[str, dict[str, str]] = field(default_factory=dict)
    files_kept: int = 0  # left in place from the bundle of the last ship
    written: dict[str, WrittenFile] = field(default_factory=dict)  # what the folder now holds, by path


def _problem_summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return shown + more


def bundle_prefix(workspace: str, deployment: str, repo: str | None = None) -> str:
    """What a bundle holds: the deployment's prefix (its main bundle), or its one repo's (a per-repo bundle). It ends
    with "/": deployment "dep" never holds "dep2"'s objects, repo "a" never "a2"'s."""
    return repo_prefix(workspace, deployment, repo) if repo else deployment_prefix(workspace, deployment)


def list_bundle(bucket: str, workspace: str, deployment: str, repo: str | None = None) -> list[BundleFile]:
    """Every object of the deployment (or of its one repo) with the path it takes in the bundle; raises
    BundleFailed on unsafe keys."""
    prefix = bundle_prefix(workspace, deployment, repo)
    files: list[BundleFile] = []
    problems: list[str] = []
    for item in listed_objects(bucket, prefix):
        if repo:
            folder, inside = repo, item.relative
        else:
            folder, _, inside = item.relative.partition("/")
        if not is_segment(folder) or not inside:
            problems.append(f"{item.key}: not inside a repo folder")
            continue
        try:
            path = normalize_relative_path(inside)
        except ValueError as reason:
            problems.append(f"{item.key}: {reason}")
            continue
        below_repo = ListedObject(key=item.key, relative=inside, etag=item.etag, size=item.size)
        files.append(BundleFile(path=path if repo else f"{folder}/{path}", repo=folder, source=below_repo))
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


def _storage_problem(error: OSError) -> str:
    return f"{error.strerror or error} (is the function's ephemeral storage large enough?)"


class Download(FrozenRecord):
    entry: BundleFile
    etag: str = ""  # the GetObject response's: what the bytes written are
    failure: str | None = None


def _download(bucket: str, entry: BundleFile, folder: Path) -> Download:
    """Write one object into the bundle; say what was written, or why it failed."""
    destination = folder / entry.path
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        response = client("s3").get_object(Bucket=bucket, Key=entry.key)
        with closing(response["Body"]) as body, destination.open("wb") as file:
            shutil.copyfileobj(body, file, COPY_CHUNK_BYTES)
        return Download(entry, etag=response["ETag"])
    except ClientError as error:
        return Download(entry, failure=f"{entry.key}: {error.response.get('Error', {}).get('Code', 'unknown error')}")
    except OSError as error:
        return Download(entry, failure=f"{entry.key}: {_storage_problem(error)}")


def _archive(bucket: str, workspace: str, deployment: str, repo: str, entries: list[BundleFile],
             written: Mapping[str, WrittenFile], folder: Path) -> RepoArchive:
    """Write a repo's archive from its files in the bundle, each with the ETag of its bytes (no GET)."""
    files = [DownloadedFile(relative=entry.source.relative, path=folder / entry.path, etag=written[entry.path].etag)
             for entry in entries]
    return refresh_repo_archive(bucket, workspace, deployment, repo, files)


def _unpack(bucket: str, workspace: str, deployment: str, repo: str, entries: list[BundleFile],
            missing: list[BundleFile], folder: Path) -> str | None:
    """Write a repo's `missing` files into the bundle from its archive, which must hold all its `entries`; return
    why the archive cannot serve, or None.

    Raises BundleFailed when the folder cannot be written (the objects one by one would not fare better)."""
    expected = {entry.source.relative: entry.source for entry in entries}
    try:
        with matching_archive(bucket, workspace, deployment, repo, expected) as archive:
            for entry in missing:
                destination = folder / entry.path
                destination.parent.mkdir(parents=True, exist_ok=True)
                with destination.open("wb") as file:
                    copy_member(archive, entry.source.relative, file)
    except StaleArchive as stale:
        return str(stale)
    except OSError as error:
        raise BundleFailed(f"the files of {repo} cannot be written into the bundle: {_storage_problem(error)}") from None
    return None


def _still_in_place(folder: Path, entry: BundleFile, kept: Mapping[str, WrittenFile]) -> bool:
    written = kept.get(entry.path)
    if written is None:
        return False
    try:
        on_disk = os.lstat(folder / entry.path)
    except OSError:
        return False
    return written.is_unchanged(entry.key, entry.source.etag, entry.source.size, on_disk)


def gather_bundle(bucket: str, workspace: str, deployment: str, folder: Path, repo: str | None = None,
                  kept: Mapping[str, WrittenFile] | None = None) -> Bundle:
    """Make `folder` hold every file of the deployment, or of its one `repo`, and nothing else.

    `folder` may hold the bundle of an earlier ship, whose files are `kept` (functions/deploy/warm_bundle.py): those
    still the listing's stay, the rest go. The missing files come from their repo's archive when it matches the
    listing, else object by object, concurrently; the repos read object by object are then archived."""
    files = list_bundle(bucket, workspace, deployment, repo)
    folder.mkdir(parents=True, exist_ok=True)
    in_place = {entry.path for entry in files if _still_in_place(folder, entry, kept or {})}
    try:
        remove_all_but(folder, in_place)
    except OSError as error:
        raise BundleFailed(f"the earlier bundle in {folder} cannot be cleared: {_storage_problem(error)}") from None
    by_repo: dict[str, list[BundleFile]] = defaultdict(list)
    missing: dict[str, list[BundleFile]] = defaultdict(list)
    for entry in files:
        by_repo[entry.repo].append(entry)
        if entry.path not in in_place:
            missing[entry.repo].append(entry)
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        stale = dict(zip(missing, pool.map(
            lambda name: _unpack(bucket, workspace, deployment, name, by_repo[name], missing[name], folder), missing
        )))
        one_by_one = [entry for name, reason in stale.items() if reason for entry in missing[name]]
        downloads = list(pool.map(lambda entry: _download(bucket, entry, folder), one_by_one))
        failures = [done.failure for done in downloads if done.failure]
        if failures:
            raise BundleFailed(
                f"{len(failures)} of {len(files)} files could not be downloaded from s3://{bucket}: "
                f"{_problem_summary(failures)}"
            )
        etags = {entry.path: entry.source.etag for entry in files} | {
            done.entry.path: done.etag for done in downloads}
        written = {entry.path: written_file(folder / entry.path, entry.key, etags[entry.path]) for entry in files}
        archives = list(pool.map(
            lambda name: _archive(bucket, workspace, deployment, name, by_repo[name], written, folder),
            [name for name, reason in stale.items() if reason]
        ))
    archived = sorted(name for name, reason in stale.items() if not reason)
    if any(stale.values()):
        logger.info("repos read object by object", extra={"stale_archives": {
            name: reason for name, reason in sorted(stale.items()) if reason}})
    not_written = [archive.to_json() for archive in archives if not archive.written]
    if not_written:
        logger.warning("archives not written: the next ship reads these repos object by object again",
                       extra={"archives": not_written})
    stored: dict[str, dict[str, str]] = {repo: {}} if repo else {}
    for entry in files:
        stored.setdefault(entry.repo, {})[entry.source.relative] = entry.source.etag.strip('"')
    return Bundle(
        files=len(files),
        bytes=sum(entry.size for entry in written.values()),
        python_files=sum(1 for entry in files if entry.path.endswith(".py")),
        repos=[repo] if repo else sorted(by_repo),
        archived_repos=archived,
        archives=archives,
        stored=stored,
        files_kept=len(in_place),
        written=written,
    )
