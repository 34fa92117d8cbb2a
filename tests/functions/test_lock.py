"""AcquireLock: one execution per deployment; a vanished holder blocks only until its lease ends."""

import math

import pytest
from moto.core.config import default_user_config
from testkit import emitted_metrics

from functions.acquire_lock import app
from functions.shared import locking
from functions.shared.aws import client
from functions.shared.errors import LockFree, LockWaitExpired
from functions.shared.locking import (
    Waiter, acquire, current_holder, release, wait_for_release, waiters_in, wake_next,
)

TABLE = "locks"


@pytest.fixture
def table(lock_table):
    return lock_table


def test_first_comer_gets_the_lock_and_others_wait(table):
    first = acquire(table, "ws/dep", "exec-a", lease_seconds=600, max_wait_seconds=900)
    second = acquire(table, "ws/dep", "exec-b", lease_seconds=600, max_wait_seconds=900)

    assert first.acquired and first.holder == "exec-a"
    assert not second.acquired and second.holder == "exec-a" and 3 <= second.wait_seconds <= 5
    assert acquire(table, "ws/other", "exec-b", 600, 900).acquired


def test_waits_grow_and_are_bounded(table, monkeypatch):
    # The longest each jittered wait may be: the backoff.
    monkeypatch.setattr(locking.random, "randint", lambda low, high: high)
    acquire(table, "ws/dep", "exec-a", 600, 10_000)
    state = None
    waits = []
    for _ in range(12):
        state = acquire(table, "ws/dep", "exec-b", 600, 10_000, previous=state)
        waits.append(state.wait_seconds)
    assert waits[:4] == [5, 7, 11, 16] and max(waits) == 60 and state.attempt == 12


def test_waiters_of_one_burst_wake_at_different_moments_within_the_second_half_of_their_backoff(table):
    acquire(table, "ws/dep", "holder", 600, 10_000)
    states = {f"exec-{number}": None for number in range(40)}
    for attempt in range(1, 5):
        for execution, state in states.items():
            states[execution] = acquire(table, "ws/dep", execution, 600, 10_000, previous=state)
        backoff = [5, 7, 11, 16][attempt - 1]
        waits = [state.wait_seconds for state in states.values()]
        assert all(math.ceil(backoff / 2) <= wait <= backoff for wait in waits)
        assert len(set(waits)) > 1


def test_gives_up_after_the_longest_wait(table, monkeypatch):
    acquire(table, "ws/dep", "exec-a", 3600, 900)
    state = acquire(table, "ws/dep", "exec-b", 3600, 900)
    monkeypatch.setattr(locking.time, "time", lambda: state.waiting_since + 901)
    with pytest.raises(LockWaitExpired, match="locked by execution exec-a"):
        acquire(table, "ws/dep", "exec-b", 3600, 900, previous=state)


def test_an_expired_lease_is_taken_over(table, monkeypatch):
    acquire(table, "ws/dep", "exec-stopped", lease_seconds=60, max_wait_seconds=900)
    now = locking.time.time()
    monkeypatch.setattr(locking.time, "time", lambda: now + 61)
    assert acquire(table, "ws/dep", "exec-b", 60, 900).acquired
    assert current_holder(table, "ws/dep") == "exec-b"


def test_a_retried_acquire_by_the_holder_succeeds(table):
    acquire(table, "ws/dep", "exec-a", 600, 900)
    assert acquire(table, "ws/dep", "exec-a", 600, 900).acquired


def test_only_the_holder_releases(table):
    acquire(table, "ws/dep", "exec-a", 600, 900)
    assert release(table, "ws/dep", "exec-b") is False
    assert release(table, "ws/dep", "exec-a") is True
    assert current_holder(table, "ws/dep") is None


def test_handler_loops_through_the_state(table, monkeypatch, lambda_context, capsys):
    monkeypatch.setenv("LOCK_TABLE", TABLE)
    monkeypatch.setenv("LOCK_LEASE_SECONDS", "600")
    monkeypatch.setenv("LOCK_MAX_WAIT_SECONDS", "900")
    acquire(table, "ws/dep", "exec-a", 600, 900)
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-b", "execution": "exec-b", "lock_key": "ws/dep"}

    waiting = app.handler(state, lambda_context)
    release(table, "ws/dep", "exec-a")
    acquired = app.handler({**state, "lock": waiting}, lambda_context)

    assert waiting["acquired"] is False and waiting["holder"] == "exec-a"
    assert acquired["acquired"] is True and acquired["attempt"] == 2
    assert "lock.wait" in emitted_metrics(capsys.readouterr().out, repo="repo-b")


def lock_item(table: str, key: str = "ws/dep") -> dict:
    return client("dynamodb").get_item(TableName=table, Key={"lock_key": {"S": key}}, ConsistentRead=True).get("Item")


def test_a_waiter_waits_in_the_lock_item_and_leaves_it_when_it_takes_the_lock(table):
    acquire(table, "ws/dep", "exec-a", 600, 900)
    wait_for_release(table, "ws/dep", "exec-b", "repo-b", "token-b")
    wait_for_release(table, "ws/dep", "exec-c", "repo-c", "token-c")
    held = lock_item(table)
    assert [waiter.execution for waiter in waiters_in(held)] == ["exec-b", "exec-c"]
    assert waiters_in(held)[0].task_token == "token-b"

    # The release deletes the item; the waker, given it as it was, wakes exec-b and puts exec-c back.
    release(table, "ws/dep", "exec-a")
    assert wake_next(table, "ws/dep", waiters_in(held)).execution == "exec-b"
    requeued = lock_item(table)
    assert "holder" not in requeued and [waiter.execution for waiter in waiters_in(requeued)] == ["exec-c"]

    # An item of waiters alone is a free lock; the one who takes it is no longer a waiter, the others stay.
    assert acquire(table, "ws/dep", "exec-b", 600, 900).acquired
    taken = lock_item(table)
    assert taken["holder"]["S"] == "exec-b" and [waiter.execution for waiter in waiters_in(taken)] == ["exec-c"]


def test_nobody_waits_for_a_lock_that_is_free_expired_or_its_own(table, monkeypatch):
    with pytest.raises(LockFree, match="released before execution exec-b could wait"):
        wait_for_release(table, "ws/dep", "exec-b", "repo-b", "token-b")
    acquire(table, "ws/dep", "exec-a", lease_seconds=60, max_wait_seconds=900)
    with pytest.raises(LockFree):
        wait_for_release(table, "ws/dep", "exec-a", "repo-a", "token-a")
    now = locking.time.time()
    monkeypatch.setattr(locking.time, "time", lambda: now + 61)
    with pytest.raises(LockFree):
        wait_for_release(table, "ws/dep", "exec-b", "repo-b", "token-b")
    assert waiters_in(lock_item(table)) == []


def test_the_longest_waiting_is_woken_first(table):
    acquire(table, "ws/dep", "exec-a", 600, 900)
    for execution in ("exec-d", "exec-b", "exec-c"):
        wait_for_release(table, "ws/dep", execution, "repo", f"token-{execution[-1]}")
    held = lock_item(table)
    release(table, "ws/dep", "exec-a")

    assert wake_next(table, "ws/dep", waiters_in(held)).execution == "exec-d"
    assert [waiter.execution for waiter in waiters_in(lock_item(table))] == ["exec-b", "exec-c"]


def test_waiters_whose_tasks_no_longer_wait_are_passed_over(table, monkeypatch):
    # moto's Step Functions with executions: it answers InvalidToken for a token no running execution waits on, as
    # AWS answers for the task of an execution that ended (TaskTimedOut for one that timed out).
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    acquire(table, "ws/dep", "exec-a", 600, 900)
    for execution in ("exec-b", "exec-c"):
        wait_for_release(table, "ws/dep", execution, "repo", f"token-{execution[-1]}")
    held = lock_item(table)
    release(table, "ws/dep", "exec-a")

    assert wake_next(table, "ws/dep", waiters_in(held)) is None
    # Nobody is put back: every waiter was tried.
    assert lock_item(table) is None


def test_waiting_through_the_handler_registers_the_task_token(table, monkeypatch, lambda_context):
    monkeypatch.setenv("LOCK_TABLE", TABLE)
    acquire(table, "ws/dep", "exec-a", 600, 900)
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-b", "execution": "exec-b", "lock_key": "ws/dep"}

    assert app.handler({"state": state, "task_token": "token-b"}, lambda_context) is None
    assert waiters_in(lock_item(table)) == [Waiter("exec-b", "token-b", waiters_in(lock_item(table))[0].since, "repo-b")]
    release(table, "ws/dep", "exec-a")
    with pytest.raises(LockFree):
        app.handler({"state": state, "task_token": "token-b"}, lambda_context)


def test_a_waiter_the_lock_item_has_no_room_for_waits_out_its_backoff(table):
    acquire(table, "ws/dep", "exec-a", 600, 900)
    token = "t" * 2048  # Step Functions' longest task token
    announced = [wait_for_release(table, "ws/dep", f"exec-{index}", "repo", token) for index in range(200)]
    # DynamoDB's 400 KB item holds some 190 of them; the others are refused, not failed.
    assert announced[0] and not announced[-1]
    assert len(waiters_in(lock_item(table))) == announced.count(True)
