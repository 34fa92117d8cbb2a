"""Recover, the recovery state machine's restore: fenced by the stopped execution's lease."""

import pytest
from testkit import DAG_BUCKET

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.recover import app as recover_app
from functions.recover.recovery import LOCK_LOST, recover_prefix
from functions.shared.aws import client
from functions.shared.errors import RollbackFailed
from functions.shared.execution_state import PlanSummary, RunScope
from functions.shared.dag_bundles import lock_key
from functions.shared.deferred_ships import defer
from functions.shared.locking import acquire, current_holder
from functions.deploy.ship_record import begin_ship, confirm_ship
from functions.shared.plan_store import Plan, load_plan, save_plan
from functions.shared.restore_point import save_restore_point

PREFIX = "dags/ws/dep/repo-a/"
BEFORE = {"etl.py": b"etl v1", "include/helpers.py": b"helpers v1"}
LEASE = 3600


def plan(deployment: str = "dep", bundle: str = "main") -> PlanSummary:
    return PlanSummary(workspace="ws", deployment=deployment, repo="repo-a", execution="exec-1", bundle=bundle,
                       prefix=f"dags/ws/{deployment}/repo-a/", plan="s3://b/plans/exec-1.json", files=2, bytes=10,
                       dag_count=1, dag_ids=["etl"], lock_key=lock_key("ws", deployment, bundle))


def contents(prefix: str = PREFIX) -> dict[str, bytes]:
    s3 = client("s3")
    return {item["Key"]: s3.get_object(Bucket=DAG_BUCKET, Key=item["Key"])["Body"].read()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DAG_BUCKET, Prefix=prefix)
            for item in page.get("Contents", [])}


@pytest.fixture
def stopped_half_way(buckets):
    """A repo prefix an execution (exec-1) snapshotted, then cleared and half uploaded before it was stopped."""
    client("dynamodb").create_table(TableName="locks", BillingMode="PAY_PER_REQUEST",
                                    AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
                                    KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}])
    for path, body in BEFORE.items():
        buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + path, Body=body)
    before = contents()
    save_restore_point(DAG_BUCKET, plan())
    clear_repo_prefix(DAG_BUCKET, plan())
    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"etl v2")
    return before


def test_while_the_stopped_execution_holds_its_lock_the_prefix_is_put_back_and_the_lease_renewed(stopped_half_way):
    acquire("locks", "ws/dep", "exec-1", lease_seconds=1, max_wait_seconds=900)

    result = recover_prefix(DAG_BUCKET, "locks", plan(), LEASE)

    assert result.status == "restored" and contents() == stopped_half_way
    # Still held, for the re-ship that may follow: the recovery state machine releases it last.
    item = client("dynamodb").get_item(TableName="locks", Key={"lock_key": {"S": "ws/dep"}})["Item"]
    assert item["holder"]["S"] == "exec-1" and int(item["expires_at"]["N"]) > int(item["acquired_at"]["N"]) + 60


def test_a_lock_another_execution_took_since_is_left_alone_and_nothing_is_put_back(stopped_half_way):
    acquire("locks", "ws/dep", "exec-later", LEASE, 900)

    result = recover_prefix(DAG_BUCKET, "locks", plan(), LEASE)

    assert result.status == "FAILED" and result.error == LOCK_LOST
    assert "restore-points/exec-1.json" in result.cause
    assert contents()[PREFIX + "etl.py"] == b"etl v2"
    assert current_holder("locks", "ws/dep") == "exec-later"


def test_without_a_snapshot_and_without_the_lock_nothing_had_changed(buckets):
    client("dynamodb").create_table(TableName="locks", BillingMode="PAY_PER_REQUEST",
                                    AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
                                    KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}])
    assert recover_prefix(DAG_BUCKET, "locks", plan(), LEASE).status == "nothing to restore"


def test_a_per_repo_bundle_renews_its_own_lock_alone(stopped_half_way):
    acquire("locks", lock_key("ws", "dep", "repo-a"), "exec-1", 1, 900)
    acquire("locks", lock_key("ws", "dep", "repo-b"), "exec-b", 1, 900)

    assert recover_prefix(DAG_BUCKET, "locks", plan(bundle="repo-a"), LEASE).status == "restored"

    expiry = {key: int(client("dynamodb").get_item(TableName="locks", Key={"lock_key": {"S": key}})["Item"]
                       ["expires_at"]["N"]) for key in (lock_key("ws", "dep", "repo-a"), lock_key("ws", "dep", "repo-b"))}
    assert expiry[lock_key("ws", "dep", "repo-a")] > expiry[lock_key("ws", "dep", "repo-b")] + 60


def test_a_restore_that_cannot_finish_fails_loudly(stopped_half_way, monkeypatch):
    acquire("locks", "ws/dep", "exec-1", LEASE, 900)
    monkeypatch.setattr(client("s3"), "copy_object", lambda **kwargs: None)
    # The recovery state machine catches it ("Recover failed") and the notification says ROLLBACK FAILED.
    with pytest.raises(RollbackFailed):
        recover_prefix(DAG_BUCKET, "locks", plan(), LEASE)


def test_the_handler_reads_the_recovery_state(stopped_half_way, monkeypatch, lambda_context):
    acquire("locks", "ws/dep", "exec-1", LEASE, 900)
    for name, value in {"DAG_BUCKET": DAG_BUCKET, "LOCK_TABLE": "locks", "LOCK_LEASE_SECONDS": str(LEASE)}.items():
        monkeypatch.setenv(name, value)
    state = {**plan().to_json(), "request": {"repo": "repo-a"}, "recovery": {"status": "ABORTED"}}
    assert recover_app.handler(state, lambda_context)["status"] == "restored"


def test_an_execution_stopped_after_deferring_its_ship_leaves_its_change_to_the_carrying_ship(stopped_half_way):
    acquire("locks", "ws/dep", "exec-1", 600, 900)
    defer("locks", "ws/dep", plan(), "token-1")
    acquire("locks", "ws/dep", "exec-2", 600, 900)

    result = recover_prefix(DAG_BUCKET, "locks", plan(), LEASE)

    # Its change is whole and released: a later ship carries it; putting it back would undo what that ship sends.
    assert (result.status, result.prefix) == ("deferred", PREFIX)
    assert contents()[PREFIX + "etl.py"] == b"etl v2"
    assert current_holder("locks", "ws/dep") == "exec-2"


def test_an_execution_stopped_after_a_later_ship_carried_its_change_is_left_as_shipped(stopped_half_way):
    acquire("locks", "ws/dep", "exec-2", 600, 900)
    save_plan(DAG_BUCKET, Plan(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1",
                               prefix=PREFIX, files=[]))
    # exec-2's ship (of repo-b) carried exec-1's change: repo-a's live record names exec-1.
    shipper = RunScope(workspace="ws", deployment="dep", repo="repo-b", execution="exec-2")
    pending = begin_ship(DAG_BUCKET, shipper, "dep-id", carried=["exec-1"])
    confirm_ship(DAG_BUCKET, pending, [load_plan(DAG_BUCKET, "exec-1")], "v1")

    assert recover_prefix(DAG_BUCKET, "locks", plan(), LEASE).status == "deferred"
