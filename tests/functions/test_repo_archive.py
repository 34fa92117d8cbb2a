"""Repo archives: written from the files Deploy downloaded, trusted only when they hold exactly what the prefix's
listing says."""

import io
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from testkit import DAG_BUCKET

from functions.shared import repo_archive
from functions.shared.repo_archive import (
    ArchiveNotWritten,
    DownloadedFile,
    StaleArchive,
    copy_member,
    listed_objects,
    matching_archive,
    refresh_repo_archive,
    write_repo_archive,
)

PREFIX = "dags/ws/dep/repo-a/"
KEY = "archives/ws/dep/repo-a.zip"
FILES = {"etl.py": b"from airflow import DAG\n", "include/helpers.py": b"VALUE = 1\n", "sql/q.sql": b"select 1"}


def put(s3, files: dict[str, bytes], prefix: str = PREFIX) -> None:
    for path, body in files.items():
        s3.put_object(Bucket=DAG_BUCKET, Key=prefix + path, Body=body)


def downloaded(s3, folder: Path, prefix: str = PREFIX) -> list[DownloadedFile]:
    """Every object of the prefix written into `folder` as a ship downloads it: the bytes and the GET's ETag."""
    files = []
    for entry in listed_objects(DAG_BUCKET, prefix):
        response = s3.get_object(Bucket=DAG_BUCKET, Key=entry.key)
        path = folder / entry.relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response["Body"].read())
        files.append(DownloadedFile(relative=entry.relative, path=path, etag=response["ETag"]))
    return files


def archive_prefix(s3, folder: Path):
    return write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a", downloaded(s3, folder))


def listing() -> dict:
    return {entry.relative: entry for entry in listed_objects(DAG_BUCKET, PREFIX)}


def unpacked(expected: dict | None = None) -> dict[str, bytes]:
    with matching_archive(DAG_BUCKET, "ws", "dep", "repo-a", listing() if expected is None else expected) as archive:
        files = {}
        for name in archive.namelist():
            copy_member(archive, name, written := io.BytesIO())
            files[name] = written.getvalue()
        return files


def stale_reason() -> str:
    with pytest.raises(StaleArchive) as raised, matching_archive(DAG_BUCKET, "ws", "dep", "repo-a", listing()):
        pass
    return str(raised.value)


def test_the_archive_holds_every_file_of_the_prefix_with_its_etag(buckets, tmp_path):
    put(buckets, {**FILES, "empty-folder/": b""})  # a folder marker is no file
    put(buckets, {"other.py": b"the neighbour repo"}, "dags/ws/dep/repo-ab/")

    written = archive_prefix(buckets, tmp_path)

    assert (written.key, written.written, written.files, written.error) == (KEY, True, 3, None)
    body = buckets.get_object(Bucket=DAG_BUCKET, Key=KEY)["Body"].read()
    assert written.bytes == len(body)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert {member.filename: member.comment.decode() for member in archive.infolist()} == {
            path: buckets.head_object(Bucket=DAG_BUCKET, Key=PREFIX + path)["ETag"] for path in FILES
        }
    assert unpacked() == FILES


def test_the_member_comment_is_the_etag_given_not_looked_up(buckets, tmp_path):
    """Deploy passes its GET's ETag: an object changed after the listing is archived as the bytes read."""
    (tmp_path / "etl.py").write_bytes(b"the bytes read")
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a",
                       [DownloadedFile(relative="etl.py", path=tmp_path / "etl.py", etag='"etag-of-the-get"')])
    body = buckets.get_object(Bucket=DAG_BUCKET, Key=KEY)["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert [(m.filename, m.comment) for m in archive.infolist()] == [("etl.py", b'"etag-of-the-get"')]
        assert archive.read("etl.py") == b"the bytes read"


def test_the_same_files_make_the_same_archive(buckets, tmp_path):
    put(buckets, FILES)
    archive_prefix(buckets, tmp_path / "one")
    first = buckets.get_object(Bucket=DAG_BUCKET, Key=KEY)["Body"].read()
    archive_prefix(buckets, tmp_path / "other")
    second = buckets.get_object(Bucket=DAG_BUCKET, Key=KEY)["Body"].read()

    with zipfile.ZipFile(io.BytesIO(first)) as one, zipfile.ZipFile(io.BytesIO(second)) as other:
        assert sorted((m.filename, m.CRC, m.date_time) for m in one.infolist()) == sorted(
            (m.filename, m.CRC, m.date_time) for m in other.infolist())


def test_no_files_make_an_empty_archive(buckets):
    written = write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a", [])
    assert written.files == 0
    assert unpacked({}) == {}


def test_large_files_are_streamed_into_the_archive(buckets, monkeypatch, tmp_path):
    monkeypatch.setattr(repo_archive, "READ_WHOLE_BYTES", 4)
    put(buckets, FILES)
    archive_prefix(buckets, tmp_path)
    assert unpacked() == FILES


@pytest.mark.parametrize("change, reason", [
    (lambda s3: put(s3, {"added_later.py": b"new"}), "differs from the prefix in 1 files: added_later.py"),
    (lambda s3: put(s3, {"etl.py": b"from airflow import DAG  # changed\n"}), "differs from the prefix in 1 files: etl.py"),
    # The same bytes again: S3 gives the same ETag, and the archive still holds exactly the prefix.
    (lambda s3: put(s3, {"etl.py": FILES["etl.py"]}), None),
    (lambda s3: s3.delete_object(Bucket=DAG_BUCKET, Key=PREFIX + "sql/q.sql"),
     "differs from the prefix in 1 files: sql/q.sql"),
    (lambda s3: s3.delete_object(Bucket=DAG_BUCKET, Key=KEY), "archives/ws/dep/repo-a.zip: NoSuchKey"),
    (lambda s3: s3.put_object(Bucket=DAG_BUCKET, Key=KEY, Body=b"not a zip"), "not a readable zip"),
])
def test_a_changed_prefix_or_archive_is_detected(buckets, change, reason, tmp_path):
    put(buckets, FILES)
    archive_prefix(buckets, tmp_path)

    change(buckets)

    if reason is None:
        assert unpacked() == FILES
    else:
        assert reason in stale_reason()


def test_a_member_of_another_size_is_stale_even_with_the_listed_etag(buckets, tmp_path):
    put(buckets, FILES)
    archive_prefix(buckets, tmp_path)
    expected = listing()
    entry = expected["etl.py"]
    expected["etl.py"] = repo_archive.ListedObject(key=entry.key, relative=entry.relative, etag=entry.etag,
                                                   size=entry.size + 1)

    with pytest.raises(StaleArchive, match="etl.py"), matching_archive(DAG_BUCKET, "ws", "dep", "repo-a", expected):
        pass


def test_a_damaged_member_fails_its_crc_check_as_it_is_read(buckets, tmp_path):
    put(buckets, {"etl.py": b"A" * 1000})
    archive_prefix(buckets, tmp_path)
    body = bytearray(buckets.get_object(Bucket=DAG_BUCKET, Key=KEY)["Body"].read())
    # Inside the member's deflated data, just after its local header (30 bytes and the name).
    body[30 + len("etl.py") + 2] ^= 0xFF
    buckets.put_object(Bucket=DAG_BUCKET, Key=KEY, Body=bytes(body))

    with pytest.raises(StaleArchive, match="member etl.py is damaged"):
        unpacked()


def failing(s3, operation: str, code: str = "InternalError") -> None:
    def fail(**_):
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    s3.meta.events.register(f"before-call.s3.{operation}", fail)


def test_an_archive_that_cannot_be_written_is_reported_and_the_old_one_is_left(buckets, tmp_path):
    put(buckets, FILES)
    archive_prefix(buckets, tmp_path / "first")
    put(buckets, {"added_later.py": b"new"})
    files = downloaded(buckets, tmp_path / "second")
    failing(repo_archive.client("s3"), "PutObject")

    with pytest.raises(ArchiveNotWritten, match="InternalError"):
        write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a", files)
    refreshed = refresh_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a", files)

    assert (refreshed.key, refreshed.written) == (KEY, False)
    assert "InternalError" in refreshed.error
    # The archive left behind no longer matches the prefix: a reader sees it.
    assert "added_later.py" in stale_reason()


def test_a_file_that_cannot_be_read_leaves_the_archive_unwritten(buckets, tmp_path):
    put(buckets, FILES)
    files = downloaded(buckets, tmp_path)
    (tmp_path / "etl.py").unlink()

    refreshed = refresh_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a", files)

    assert not refreshed.written and "etl.py" in refreshed.error
    assert "NoSuchKey" in stale_reason()
