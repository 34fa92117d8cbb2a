"""The ship slot: a ship of the main bundle holds it instead of the lock while the CLI uploads. Only the holder of
the lock takes it; an execution whose repo it carries waits for its end; its end wakes them; a stopped holder's
repo is restored under it (functions/shared/ship_slot.py)."""

import pytest
from testkit import DAG_BUCKET

from functions.acquire_lock import app as lock_app
from functions.acquire_lock.taking import LockRequest, take_lock
from functions.clear_prefix.clearing import clear_repo_prefix
from functions.recover.recovery import LOCK_LOST, recover_prefix
from functions.shared import ship_slot
from functions.shared.aws import client
from functions.shared.deferred_ships import decide, defer
from functions.shared.errors import LockFree, LockLost, LockWaitExpired, ShipInFlight
from functions.shared.execution_state import PlanSummary, RunScope
from functions.shared.locking import acquire, current_holder, release, wait_for_release, waiters_in
from functions.shared.restore_point import save_restore_point
from functions.shared.ship_slot import (
    ShipSlot, end_ship, hand_over, keep_slot, lock_key_of_slot, ship_in_flight, slot_key,
)
from functions.wake_waiters.waking import after_release, after_ship

KEY = "ws/dep"


def scope(execution: str, repo: str) -> RunScope:
    return RunScope(workspace="ws", deployment="dep", repo=repo, execution=execution)


def shipping(table: str, execution: str, repos: list[str], lease_seconds: int = 600) -> None:
    """`execution` took the lock, gathered, and handed the lock over to its ship."""
    acquire(table, KEY, execution, 600, 900)
    hand_over(table, KEY, execution, repos, lease_seconds)


def item(table: str, key: str) -> dict | None:
    return client("dynamodb").get_item(TableName=table, Key={"lock_key": {"S": key}}, ConsistentRead=True).get("Item")


def test_the_holder_hands_the_lock_over_to_its_ship_in_one_transaction(lock_table):
    shipping(lock_table, "exec-a", ["repo-b", "repo-a", "repo-a"])

    assert current_holder(lock_table, KEY) is None
    slot = ship_in_flight(lock_table, KEY)
    assert (slot.holder, slot.repos) == ("exec-a", ("repo-a", "repo-b"))
    # Another execution takes the lock at once, the ship still in flight.
    assert acquire(lock_table, KEY, "exec-c", 600, 900).acquired
    assert end_ship(lock_table, KEY, "exec-a") and ship_in_flight(lock_table, KEY) is None
    assert not end_ship(lock_table, KEY, "exec-a")


def test_only_the_holder_of_the_lock_hands_it_over_and_only_to_a_free_slot(lock_table):
    with pytest.raises(LockLost, match="execution exec-a no longer holds the lock ws/dep"):
        hand_over(lock_table, KEY, "exec-a", ["repo-a"], 600)
    shipping(lock_table, "exec-a", ["repo-a"])
    acquire(lock_table, KEY, "exec-b", 600, 900)

    with pytest.raises(ShipInFlight):
        hand_over(lock_table, KEY, "exec-b", ["repo-b"], 600)
    # Nothing of the cancelled transaction stays: exec-b keeps the lock, exec-a the slot.
    assert current_holder(lock_table, KEY) == "exec-b" and ship_in_flight(lock_table, KEY).holder == "exec-a"


def test_a_slot_whose_lease_ran_out_is_no_ship_in_flight(lock_table, monkeypatch):
    shipping(lock_table, "exec-a", ["repo-a"])
    now = ship_slot.time.time()
    monkeypatch.setattr(ship_slot.time, "time", lambda: now + 601)

    assert ship_in_flight(lock_table, KEY) is None
    acquire(lock_table, KEY, "exec-b", 600, 900)
    hand_over(lock_table, KEY, "exec-b", ["repo-b"], 600)
    assert ship_in_flight(lock_table, KEY).holder == "exec-b"


def test_the_slot_is_an_item_of_the_lock_table_of_its_own():
    assert slot_key(KEY) == "shipping#ws/dep"
    assert lock_key_of_slot(slot_key(KEY)) == KEY and lock_key_of_slot(KEY) is None
    assert lock_key_of_slot("ships#ws/dep") is None


def take(table: str, execution: str, repo: str, previous: dict | None = None, max_wait: int = 900) -> dict:
    state = {"workspace": "ws", "deployment": "dep", "repo": repo, "execution": execution, "lock_key": KEY,
             **({"lock": previous} if previous else {})}
    return take_lock(LockRequest.from_json(state), table, 600, max_wait).to_json()


def test_an_execution_whose_repo_the_ship_carries_waits_for_its_end(lock_table):
    shipping(lock_table, "exec-a", ["repo-a", "repo-b"])

    carried = take(lock_table, "exec-c", "repo-b")
    other = take(lock_table, "exec-d", "repo-d")

    # The repo must not change before the ship that carries its change has ended: the lock is given back.
    assert (carried["acquired"], carried["ship_in_flight"]) == (False, "exec-a") and carried["wait_seconds"] > 0
    assert other["acquired"] is True and current_holder(lock_table, KEY) == "exec-d"
    end_ship(lock_table, KEY, "exec-a")
    release(lock_table, KEY, "exec-d")
    assert take(lock_table, "exec-c", "repo-b", carried)["acquired"] is True


def test_an_execution_whose_repo_has_a_change_waiting_for_the_next_ship_waits_for_the_ship_in_flight(lock_table):
    # repo-b's change was deferred after the ship in flight gathered: it ships next, before repo-b changes again.
    shipping(lock_table, "exec-a", ["repo-a"])
    acquire(lock_table, KEY, "exec-b", 600, 900)
    defer(lock_table, KEY, scope("exec-b", "repo-b"), "token-b")

    assert take(lock_table, "exec-c", "repo-b")["ship_in_flight"] == "exec-a"


def test_waiting_for_a_ship_counts_in_the_lock_wait(lock_table, monkeypatch):
    shipping(lock_table, "exec-a", ["repo-b"], lease_seconds=3600)
    waiting = take(lock_table, "exec-c", "repo-b")
    now = ship_slot.time.time()
    monkeypatch.setattr(ship_slot.time, "time", lambda: now + 901)

    with pytest.raises(LockWaitExpired, match="the ship of execution exec-a to ws/dep carries a change of this repo"):
        take(lock_table, "exec-c", "repo-b", waiting)


def test_a_waiter_for_a_ship_waits_in_the_slot_item(lock_table, monkeypatch, lambda_context):
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    shipping(lock_table, "exec-a", ["repo-b"])
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-b", "execution": "exec-c", "lock_key": KEY,
             "lock": take(lock_table, "exec-c", "repo-b")}

    lock_app.handler({"state": state, "task_token": "token-c"}, lambda_context)

    assert [waiter.execution for waiter in waiters_in(item(lock_table, slot_key(KEY)))] == ["exec-c"]
    end_ship(lock_table, KEY, "exec-a")
    with pytest.raises(LockFree):
        lock_app.handler({"state": state, "task_token": "token-c"}, lambda_context)


def test_a_holder_defers_its_ship_while_another_is_in_flight(lock_table, monkeypatch, lambda_context):
    monkeypatch.setenv("LOCK_TABLE", lock_table)
    shipping(lock_table, "exec-a", ["repo-a"])
    acquire(lock_table, KEY, "exec-b", 600, 900)
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-b", "execution": "exec-b", "lock_key": KEY}

    decision = lock_app.handler({"action": "ship_or_defer", "state": state}, lambda_context)

    assert decision["defer"] is True and "the ship of execution exec-a is uploading" in decision["reason"]
    # A per-repo bundle ships its repo alone, whatever is in flight.
    assert not decide(RunScope(**{**scope("exec-b", "repo-b").to_json(), "bundle": "repo-b"}), KEY, {},
                      "exec-a").defer


@pytest.fixture
def woken(monkeypatch) -> list[str]:
    """The task tokens the waker sent success to (each task still waiting)."""
    tokens: list[str] = []
    monkeypatch.setattr("functions.wake_waiters.waking.send_success", lambda token, output: tokens.append(token) or True)
    return tokens


def test_the_end_of_a_ship_wakes_every_execution_waiting_for_it_and_no_deferred_one(lock_table, woken):
    acquire(lock_table, KEY, "exec-d", 600, 900)
    defer(lock_table, KEY, scope("exec-d", "repo-d"), "token-d")
    shipping(lock_table, "exec-a", ["repo-b"])
    for execution in ("exec-b", "exec-c"):
        wait_for_release(lock_table, slot_key(KEY), execution, "repo-b", f"token-{execution[-1]}")
    slot = item(lock_table, slot_key(KEY))
    end_ship(lock_table, KEY, "exec-a")

    # They take the lock in turn; the first to ship carries exec-d's deferred change.
    assert after_ship(lock_table, KEY, waiters_in(slot)) == "exec-b"
    assert woken == ["token-b", "token-c"]


def test_the_end_of_a_ship_nobody_waits_for_wakes_the_longest_deferred_once_the_lock_is_free(lock_table, woken):
    acquire(lock_table, KEY, "exec-d", 600, 900)
    defer(lock_table, KEY, scope("exec-d", "repo-d"), "token-d")
    shipping(lock_table, "exec-a", ["repo-a"])
    # The lock's release while the ship is in flight wakes no deferred execution: the ship carries none of them.
    assert after_release(lock_table, KEY, []) is None and woken == []
    acquire(lock_table, KEY, "exec-e", 600, 900)
    end_ship(lock_table, KEY, "exec-a")

    # Held by exec-e: its release acts.
    assert after_ship(lock_table, KEY, []) is None and woken == []
    release(lock_table, KEY, "exec-e")
    assert after_ship(lock_table, KEY, []) == "exec-d" and woken == ["token-d"]


PREFIX = "dags/ws/dep/repo-a/"


def plan() -> PlanSummary:
    return PlanSummary(workspace="ws", deployment="dep", repo="repo-a", execution="exec-a", prefix=PREFIX,
                       plan="s3://b/plans/exec-a.json", files=1, bytes=6, dag_count=1, dag_ids=["etl"], lock_key=KEY)


@pytest.fixture
def failed_ship_of_a_stopped_execution(buckets, lock_table):
    """exec-a changed repo-a, handed the lock over to its ship, and was stopped; the ship's invocation failed."""
    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"etl v1")
    save_restore_point(DAG_BUCKET, plan())
    clear_repo_prefix(DAG_BUCKET, plan())
    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"etl v2")
    shipping(lock_table, "exec-a", ["repo-a"])
    return buckets


def live_etl(s3) -> bytes:
    return s3.get_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py")["Body"].read()


def test_a_stopped_execution_s_failed_ship_is_restored_under_its_slot_and_takes_the_lock_back_to_re_ship(
    failed_ship_of_a_stopped_execution, lock_table
):
    result = recover_prefix(DAG_BUCKET, lock_table, plan(), 3600)

    assert result.status == "restored" and live_etl(failed_ship_of_a_stopped_execution) == b"etl v1"
    # Held for the re-ship, which the recovery state machine releases last; the ship's slot ended.
    assert current_holder(lock_table, KEY) == "exec-a" and ship_in_flight(lock_table, KEY) is None


def test_a_recovery_that_cannot_take_the_lock_back_restores_and_leaves_the_re_ship_to_the_next_ship(
    failed_ship_of_a_stopped_execution, lock_table, monkeypatch
):
    acquire(lock_table, KEY, "exec-b", 600, 900)
    clock = iter([30, 20, 9])
    monkeypatch.setattr("functions.recover.recovery.time.sleep", lambda seconds: None)

    result = recover_prefix(DAG_BUCKET, lock_table, plan(), 3600, lambda: next(clock))

    assert result.error == LOCK_LOST and "could not be taken back in time" in result.cause
    assert live_etl(failed_ship_of_a_stopped_execution) == b"etl v1"
    assert current_holder(lock_table, KEY) == "exec-b" and ship_in_flight(lock_table, KEY) is None


def test_only_the_slot_s_holder_renews_it(lock_table):
    shipping(lock_table, "exec-a", ["repo-a"])
    assert keep_slot(lock_table, KEY, "exec-a", 3600) and not keep_slot(lock_table, KEY, "exec-b", 3600)
    assert ship_in_flight(lock_table, KEY) == ShipSlot(holder="exec-a", repos=("repo-a",),
                                                       expires_at=ship_in_flight(lock_table, KEY).expires_at)
