"""Waiting for a deployment's lock, end to end: each release wakes the longest-waiting execution at once; a lost
wake-up or a waiter gone costs at most one backoff, never the lock."""

from pathlib import Path

from local_mode.astro_standin import read_invocations
from local_mode.executions import execution_history, watch_execution
from local_mode.scenario import Scenario
from local_mode.world import LocalWorld
from testkit import execution_output, lock_items_once_told, start_behind_a_held_deploy

from functions.shared.locking import FIRST_WAIT_SECONDS

REPOS = ("marketing_etl", "finance_reports", "web_analytics_fixed")


def repos_of_one_deployment(folder: Path, repos: tuple[str, ...]) -> Scenario:
    """A request per repo of one deployment, each repo one DAG file of its own."""
    for repo in repos:
        (folder / repo).mkdir(parents=True)
        (folder / repo / f"{repo}_daily.py").write_text(f"from airflow import DAG\nDAG('{repo}_daily', schedule=None)\n")
    return Scenario.from_document(
        {"requests": [{"astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo,
                       "dags_dir": repo} for repo in repos]},
        folder,
    )


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
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, repos_of_one_deployment(tmp_path / "dags", REPOS))
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 3
        # A wait may time out first while the first deploy is held (a loaded machine); the last one was woken.
        assert [how_waits_ended(world, arn)[-1] for arn in arns[1:]] == ["woken", "woken"]
        # In the order they came, each right after the one before: no waiter slept out a backoff.
        assert sorted(arns, key=lambda arn: entered(world, arn, "Snapshot")) == arns
        # The second, finding the third waiting, left its ship to the third's (functions/shared/deferred_ships.py).
        ships = ships_in_order(world)
        assert [ship["files"] for ship in ships] == [1, 3]
        assert results[1].states[-1] == "Deployed by another ship"
        assert execution_output(world, arns[1])["carried"]["shipped_by"] == results[2].name
        assert ships[1]["start"] - ships[0]["end"] < FIRST_WAIT_SECONDS
        assert lock_items_once_told(world) == []


def test_a_lost_wake_up_costs_one_backoff_not_the_lock(tmp_path):
    with LocalWorld(tmp_path / "out") as world, world.lose_stream_records() as lost:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, repos_of_one_deployment(tmp_path / "dags", REPOS[:2]))
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 2
        assert any(record["eventName"] == "REMOVE" for record in lost)
        assert "timed out" in how_waits_ended(world, arns[1]) and "woken" not in how_waits_ended(world, arns[1])


def test_a_waiter_stopped_while_waiting_is_passed_over(tmp_path):
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, repos_of_one_deployment(tmp_path / "dags", REPOS))
            world.client("stepfunctions").stop_execution(executionArn=arns[1], cause="test: withdrawn")
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED", "ABORTED", "SUCCEEDED"]
        assert how_waits_ended(world, arns[2])[-1] == "woken"
        first, last = ships_in_order(world)
        assert last["start"] - first["end"] < FIRST_WAIT_SECONDS
