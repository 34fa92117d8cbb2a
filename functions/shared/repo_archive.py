"""Repo archives: one zip per repo prefix, so that a ship gathers each repo with one GET instead of one per file.

`archives/{workspace}/{deployment}/{repo}.zip` holds every object under `dags/{workspace}/{deployment}/{repo}/`
but folder markers: each member is named by its key below the prefix, and its comment is the ETag of the object
version its bytes were read from. Deploy writes it where the bytes already are: for each repo it had to read object
by object (its archive missing or stale), it zips the files it just downloaded into the bundle, each with the ETag
of its GetObject response. Nothing else writes archives: a repo changed by Upload or a restore is read once, object
by object, by the next ship, which leaves its archive for the ships after it. ClearPrefix removes the repo's
archive before a push changes the prefix, so that the next ship misses it rather than downloading it to find it
stale.

A reader uses an archive only when its members, their ETags and sizes are exactly the prefix's current listing: S3
gives an object new content only with a new ETag, so a match means the same bytes (and each member's CRC is checked
as it is read). A missing, stale or unreadable archive is no error: the reader goes to the objects. So an archive
left behind by anything (an Upload, a rollback, a person editing the bucket, a Deploy that could not write a newer
one) costs one wasted GET, never a wrong file.
"""

import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.aws import client
from functions.shared.execution_state import RepoArchive
from functions.shared.paths import repo_archive_key
from functions.shared.records import FrozenRecord

# Archives are kept in memory up to this size, then spill to the function's /tmp.
SPOOL_BYTES = 16 * 1024 * 1024
# Files up to this size are read whole; larger ones are streamed into the archive.
READ_WHOLE_BYTES = 8 * 1024 * 1024
COPY_CHUNK_BYTES = 1024 * 1024
# Level 1: DAG code still shrinks about 4 times, at a fraction of the default level's CPU.
COMPRESS_LEVEL = 1
# Members carry no meaningful time: the same files make the same archive.
MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


class ArchiveNotWritten(Exception):
    """The archive could not be written; the one in S3, if any, is left as it was (a reader finds it stale)."""


class StaleArchive(Exception):
    """The archive is missing, unreadable, or does not hold exactly the prefix's objects."""


class ListedObject(FrozenRecord):
    key: str
    relative: str  # the key below the listed prefix
    etag: str
    size: int


def is_folder_marker(relative: str, size: int) -> bool:
    """An empty key ending in "/" (the S3 console's "Create folder"): no content to ship or archive."""
    return (not relative or relative.endswith("/")) and size == 0


def listed_objects(bucket: str, prefix: str) -> list[ListedObject]:
    """Every object under the prefix but folder markers, with its ETag and size (pages of 1,000 keys)."""
    listed = []
    for page in client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):]
            if not is_folder_marker(relative, item["Size"]):
                listed.append(ListedObject(key=item["Key"], relative=relative, etag=item["ETag"], size=item["Size"]))
    return listed


class DownloadedFile(FrozenRecord):
    relative: str  # the key below the repo prefix: the member's name
    path: Path  # where the bytes were written
    etag: str  # the ETag of the GetObject response the bytes came from, not the listing's


def _add_file(entry: DownloadedFile, archive: zipfile.ZipFile) -> None:
    member = zipfile.ZipInfo(entry.relative, date_time=MEMBER_TIME)
    member.compress_type = zipfile.ZIP_DEFLATED
    # The object may have changed between the listing and the GET: the comment names the bytes held.
    member.comment = entry.etag.encode()
    size = entry.path.stat().st_size
    if size <= READ_WHOLE_BYTES:
        archive.writestr(member, entry.path.read_bytes(), compresslevel=COMPRESS_LEVEL)
    else:
        member.file_size = size
        with entry.path.open("rb") as source, archive.open(member, "w", force_zip64=True) as destination:
            shutil.copyfileobj(source, destination, COPY_CHUNK_BYTES)


def write_repo_archive(
    bucket: str, workspace: str, deployment: str, repo: str, files: Iterable[DownloadedFile]
) -> RepoArchive:
    """Archive a repo prefix from its files just downloaded (every object of its listing); raise ArchiveNotWritten
    if it cannot."""
    key = repo_archive_key(workspace, deployment, repo)
    members = sorted(files, key=lambda entry: entry.relative)
    try:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for entry in members:
                    _add_file(entry, archive)
            size = spool.tell()
            spool.seek(0)
            client("s3").put_object(Bucket=bucket, Key=key, Body=spool, ContentLength=size,
                                    ContentType="application/zip")
    except ClientError as error:
        raise ArchiveNotWritten(f"s3://{bucket}/{key}: {error.response.get('Error', {}).get('Code')}") from None
    except (BotoCoreError, OSError, zipfile.LargeZipFile) as error:
        raise ArchiveNotWritten(f"s3://{bucket}/{key}: {error}") from None
    return RepoArchive(key=key, files=len(members), bytes=size)


def refresh_repo_archive(
    bucket: str, workspace: str, deployment: str, repo: str, files: Iterable[DownloadedFile]
) -> RepoArchive:
    """Archive a repo prefix from its downloaded files; an archive that cannot be written is reported, not raised:
    the ship matters, and a reader detects the archive left in S3 as stale."""
    try:
        return write_repo_archive(bucket, workspace, deployment, repo, files)
    except ArchiveNotWritten as error:
        return RepoArchive(key=repo_archive_key(workspace, deployment, repo), written=False, error=str(error))


def _download(bucket: str, key: str, spool: BinaryIO) -> None:
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with closing(body):
            shutil.copyfileobj(body, spool, COPY_CHUNK_BYTES)
    except ClientError as error:
        # A missing archive reads as AccessDenied to a reader allowed to list dags/ only.
        raise StaleArchive(f"s3://{bucket}/{key}: {error.response.get('Error', {}).get('Code')}") from None
    except BotoCoreError as error:
        raise StaleArchive(f"s3://{bucket}/{key}: {error}") from None


def differences(archive: zipfile.ZipFile, expected: Mapping[str, ListedObject]) -> list[str]:
    """The relative keys where the archive and the listing disagree (a member missing, extra, or another
    version)."""
    held = {member.filename: (member.comment.decode(errors="replace"), member.file_size)
            for member in archive.infolist()}
    wanted = {relative: (entry.etag, entry.size) for relative, entry in expected.items()}
    return sorted(name for name in held.keys() | wanted.keys() if held.get(name) != wanted.get(name))


@contextmanager
def matching_archive(
    bucket: str, workspace: str, deployment: str, repo: str, expected: Mapping[str, ListedObject]
) -> Iterator[zipfile.ZipFile]:
    """The repo's archive, open, if it holds exactly `expected` (by key below the repo prefix); else StaleArchive.

    Read its members with `copy_member`, which checks each one's bytes.
    """
    key = repo_archive_key(workspace, deployment, repo)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        _download(bucket, key, spool)
        try:
            archive = zipfile.ZipFile(spool)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise StaleArchive(f"s3://{bucket}/{key}: not a readable zip ({error})") from None
        with archive:
            stale = differences(archive, expected)
            if stale:
                shown = ", ".join(stale[:5]) + (f" (and {len(stale) - 5} more)" if len(stale) > 5 else "")
                raise StaleArchive(f"s3://{bucket}/{key} differs from the prefix in {len(stale)} files: {shown}")
            yield archive


def copy_member(archive: zipfile.ZipFile, name: str, destination: BinaryIO) -> None:
    """Write one member's bytes into `destination`; StaleArchive if they are damaged (CRC or deflate data)."""
    try:
        with archive.open(name) as member:
            shutil.copyfileobj(member, destination, COPY_CHUNK_BYTES)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise StaleArchive(f"the archive's member {name} is damaged: {error}") from None
