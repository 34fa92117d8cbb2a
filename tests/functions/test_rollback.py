"""Restore points: after a failure, the repo prefix is byte-for-byte what it was."""


import pytest
from testkit import DAG_BUCKET

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.deploy.bundling import gather_bundle
from functions.rollback import app as rollback_app
from functions.snapshot import app as snapshot_app
from functions.shared.restore_point import restore, save_restore_point
from functions.shared.errors import RollbackFailed
from functions.shared.execution_state import RunScope
from functions.shared.deferred_ships import defer, read_deferred
from functions.shared.locking import acquire, current_holder
from functions.shared.plan_store import Plan, save_plan
from functions.shared.ship_slot import hand_over, ship_in_flight

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
                                   "unchanged": 0}
    assert contents(repo, "dags/ws/dep/repo-ab/") == {"etl.py": (b"neighbour", {})}


def test_the_ship_after_a_restore_holds_exactly_the_restored_prefix(repo, tmp_path):
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    # The failed run's Deploy gathered the new files, and archived them, before its CLI failed.
    gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "failed", repo="repo-a")

    restore(DAG_BUCKET, SCOPE)
    after = gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "after", repo="repo-a")

    # The restore writes no archive: the one left holds the failed files, the ship sees it and reads the objects.
    assert {str(path.relative_to(tmp_path / "after")): path.read_bytes()
            for path in (tmp_path / "after").rglob("*") if path.is_file()} == BEFORE
    assert after.archived_repos == [] and [archive.written for archive in after.archives] == [True]
    assert gather_bundle(DAG_BUCKET, "ws", "dep", tmp_path / "next", repo="repo-a").archived_repos == ["repo-a"]


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


@pytest.mark.parametrize("handed_over", [False, True], ids=["under the lock", "lock handed over to its ship"])
def test_step_handlers(repo, lock_table, monkeypatch, lambda_context, handed_over):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    state = {**SCOPE.to_json(), "prefix": PREFIX, "lock_key": "ws/dep"}
    save_plan(DAG_BUCKET, Plan(**SCOPE.to_json(), prefix=PREFIX, files=[]))  # Parse's, which Snapshot reads again
    assert snapshot_app.handler(state, lambda_context)["objects"] == 3
    acquire(lock_table, "ws/dep", "exec-1", 600, 900)
    if handed_over:
        # It had deferred its ship, was woken to ship itself, and its ship failed.
        defer(lock_table, "ws/dep", SCOPE, "token-1")
        acquire(lock_table, "ws/dep", "exec-1", 600, 900)
        hand_over(lock_table, "ws/dep", "exec-1", ["repo-a"], 600)
    half_done_deploy(repo)
    result = rollback_app.handler(state, lambda_context)
    assert result["status"] == "restored" and contents(repo)["etl.py"][0] == b"etl v1"
    # What the state machine reads to skip the release of a lock the execution handed over.
    assert result["ship_ended"] is handed_over
    # Once the repo is back, its change is withdrawn and its ship ends; the lock is not Rollback's to release.
    assert read_deferred(lock_table, "ws/dep") == []
    assert ship_in_flight(lock_table, "ws/dep") is None
    assert current_holder(lock_table, "ws/dep") == (None if handed_over else "exec-1")

