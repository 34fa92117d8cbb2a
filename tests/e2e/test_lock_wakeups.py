"""Waiting for a deployment's lock, end to end: each release wakes the longest-waiting execution at once; a lost
wake-up or a waiter gone costs at most one backoff, never the lock. The lock's waits are seen behind ships of
per-repo Dag bundles, which keep the lock to the end; a ship of the main bundle hands it over, and its end wakes
the executions that wait for it."""

from burst_kit import scenario
from local_mode.astro_standin import read_invocations
from local_mode.executions import execution_history, watch_execution
from local_mode.world import LocalWorld
from testkit import (
    PER_REPO_BUNDLES, execution_output, lock_items, lock_items_once_told, start_behind_a_held_deploy,
)

from functions.shared.locking import FIRST_WAIT_SECONDS

# Pushes of one repo: a per-repo Dag bundle's lock is the repo's own.
PUSHES = [("marketing_etl", f"c0d{number}") for number in range(3)]


def entered(world: LocalWorld, arn: str, state: str) -> float:
    return next(event["timestamp"].timestamp() for event in execution_history(world, arn)
                if event.get("stateEnteredEventDetails", {}).get("name") == state)


def how_waits_ended(world: LocalWorld, arn: str) -> list[str]:
    """How each WaitForLock of the execution ended that was woken (the callback's success) or timed out."""
    ended = []
    for event in execution_history(world, arn):
        if event["type"] == "TaskSucceeded" and "woken" in event["taskSucceededEventDetails"].get("output", ""):
            ended.append("woken")
        elif event["type"] == "TaskTimedOut":
            ended.append("timed out")
    return ended


def ships_in_order(world: LocalWorld) -> list[dict]:
    return sorted(read_invocations(world.astro_state_dir), key=lambda deploy: deploy["start"])


def test_each_release_wakes_the_longest_waiting_execution_at_once(tmp_path):
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", PUSHES))
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 3
        # A wait may time out first while the first deploy is held (a loaded machine); the last one was woken.
        assert [how_waits_ended(world, arn)[-1] for arn in arns[1:]] == ["woken", "woken"]
        # In the order they came, each right after the one before: no waiter slept out a backoff.
        assert sorted(arns, key=lambda arn: entered(world, arn, "Snapshot")) == arns
        ships = ships_in_order(world)
        assert [ship["files"] for ship in ships] == [1, 1, 1]
        assert all(later["start"] - earlier["end"] < FIRST_WAIT_SECONDS for earlier, later in zip(ships, ships[1:]))
        assert lock_items_once_told(world) == []


def test_the_end_of_a_ship_wakes_the_executions_waiting_for_it_at_once(tmp_path):
    # Behind marketing_etl's held ship, finance_reports changes its repo and defers its ship; marketing_etl pushed
    # again waits for the ship, which carries its repo, to end.
    pushes = [("marketing_etl", "c0d1"), ("finance_reports", "c0d1"), ("marketing_etl", "c0d2")]
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", pushes), ["DeferShip", "WaitForLock"])
            # The held ship uploads without the lock: only its slot and the deferred change are in the table.
            assert sorted(item["lock_key"]["S"] for item in lock_items(world)) == [
                "shipping#analytics/production", "ships#analytics/production"]
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 3
        assert how_waits_ended(world, arns[2])[-1] == "woken"
        # Its ship, right after the held one, carried finance_reports's deferred change.
        ships = ships_in_order(world)
        assert [ship["files"] for ship in ships] == [1, 2]
        assert ships[1]["start"] - ships[0]["end"] < FIRST_WAIT_SECONDS
        assert results[1].states[-1] == "Deployed by another ship"
        assert execution_output(world, arns[1])["carried"]["shipped_by"] == results[2].name
        assert lock_items_once_told(world) == []


def test_a_lost_wake_up_costs_one_backoff_not_the_lock(tmp_path):
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world, world.lose_stream_records() as lost:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", PUSHES[:2]))
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 2
        assert any(record["eventName"] == "REMOVE" for record in lost)
        assert "timed out" in how_waits_ended(world, arns[1]) and "woken" not in how_waits_ended(world, arns[1])


def test_a_waiter_stopped_while_waiting_is_passed_over(tmp_path):
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", PUSHES))
            world.client("stepfunctions").stop_execution(executionArn=arns[1], cause="test: withdrawn")
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED", "ABORTED", "SUCCEEDED"]
        assert how_waits_ended(world, arns[2])[-1] == "woken"
        first, last = ships_in_order(world)
        assert last["start"] - first["end"] < FIRST_WAIT_SECONDS
