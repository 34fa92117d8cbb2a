"""Restore points: after a failure, the repo prefix is byte-for-byte what it was."""


import pytest
from testkit import DAG_BUCKET

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.rollback import app as rollback_app
from functions.snapshot import app as snapshot_app
from functions.shared import repo_archive
from functions.shared.repo_archive import (
    ArchiveNotWritten, StaleArchive, listed_objects, matching_archive, write_repo_archive,
)
from functions.shared.restore_point import restore, save_restore_point
from functions.shared.errors import RollbackFailed
from functions.shared.execution_state import RunScope
from functions.shared.plan_store import Plan, save_plan

SCOPE = RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1")
PREFIX = "dags/ws/dep/repo-a/"
BEFORE = {"etl.py": b"etl v1", "include/helpers.py": b"helpers v1", "sql/q.sql": b"select 1"}


def contents(s3, prefix: str = PREFIX) -> dict[str, tuple[bytes, dict]]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DAG_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            response = s3.get_object(Bucket=DAG_BUCKET, Key=item["Key"])
            found[item["Key"][len(prefix):]] = (response["Body"].read(), response["Metadata"])
    return found


@pytest.fixture
def repo(buckets):
    for path, body in BEFORE.items():
        buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + path, Body=body, Metadata={"commit": "old"})
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-ab/etl.py", Body=b"neighbour")
    return buckets


def half_done_deploy(s3) -> None:
    """What a failure in the middle of Upload leaves: the prefix cleared, some new files copied."""
    clear_repo_prefix(DAG_BUCKET, SCOPE)
    s3.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"etl v2")
    s3.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "new_dag.py", Body=b"new")


def test_restores_exactly_what_was_there(repo):
    before = contents(repo)
    summary = save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)

    result = restore(DAG_BUCKET, SCOPE)

    assert summary.objects == 3 and summary.restore_point == f"s3://{DAG_BUCKET}/restore-points/exec-1.json"
    assert contents(repo) == before
    assert result.to_json() == {"status": "restored", "prefix": PREFIX, "restored": 3, "removed": 1,
                                   "unchanged": 0, "archive": result.archive.to_json()}
    assert contents(repo, "dags/ws/dep/repo-ab/") == {"etl.py": (b"neighbour", {})}


def archived_files(s3) -> dict[str, bytes]:
    """The repo's archive, as a ship would read it: only if it holds exactly the prefix."""
    expected = {entry.relative: entry for entry in listed_objects(DAG_BUCKET, PREFIX)}
    with matching_archive(DAG_BUCKET, "ws", "dep", "repo-a", expected) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_restored_prefix_gets_its_archive_back(repo):
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    # What Upload leaves when it finishes: the archive of the new content.
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")

    result = restore(DAG_BUCKET, SCOPE)

    assert (result.archive.key, result.archive.written, result.archive.files) == ("archives/ws/dep/repo-a.zip",
                                                                                  True, 3)
    assert archived_files(repo) == BEFORE


def test_an_archive_the_restore_cannot_write_leaves_the_restore_standing(repo, monkeypatch):
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    monkeypatch.setattr(repo_archive, "write_repo_archive", failing_archive_write)

    result = restore(DAG_BUCKET, SCOPE)

    assert result.status == "restored" and contents(repo)["etl.py"][0] == b"etl v1"
    assert not result.archive.written and "injected" in result.archive.error
    # The archive left holds the failed deploy's files: a ship sees it is stale and reads the objects.
    with pytest.raises(StaleArchive, match="new_dag.py"):
        archived_files(repo)


def failing_archive_write(*_):
    raise ArchiveNotWritten("injected")


def test_restoring_twice_gives_the_same_prefix(repo):
    before = contents(repo)
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    restore(DAG_BUCKET, SCOPE)
    assert restore(DAG_BUCKET, SCOPE).removed == 0
    assert contents(repo) == before


def test_an_empty_prefix_is_restored_to_empty(buckets):
    save_restore_point(DAG_BUCKET, SCOPE)
    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"new")
    assert restore(DAG_BUCKET, SCOPE).removed == 1
    assert contents(buckets) == {}


def test_without_a_restore_point_nothing_had_changed(repo):
    result = restore(DAG_BUCKET, SCOPE)
    assert result.status == "nothing to restore"
    assert contents(repo)["etl.py"][0] == b"etl v1"


def test_a_restore_that_cannot_finish_fails_loudly(repo, monkeypatch):
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    monkeypatch.setattr(repo, "copy_object", lambda **kwargs: None)
    with pytest.raises(RollbackFailed, match="still differs from its restore point after rollback: .*etl.py"):
        restore(DAG_BUCKET, SCOPE)


def test_step_handlers(repo, monkeypatch, lambda_context):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    state = {**SCOPE.to_json(), "prefix": PREFIX}
    save_plan(DAG_BUCKET, Plan(**SCOPE.to_json(), prefix=PREFIX, files=[]))  # Parse's, which Snapshot reads again
    assert snapshot_app.handler(state, lambda_context)["objects"] == 3
    half_done_deploy(repo)
    assert rollback_app.handler(state, lambda_context)["status"] == "restored"
    assert contents(repo)["etl.py"][0] == b"etl v1"

