"""Bursts under AWS's uneven timing, end to end, on the shared main bundle and on per-repo Dag bundles: every
Lambda invocation waits a random while before and after its handler (cold starts, scheduling) and every wake-up of
the lock's stream comes twice (Lambda's at-least-once delivery). Whatever order the executions' steps then take,
nothing is lost: ships stay ordered, each execution names a version that carries its commit (or fails, notified),
and once all has settled what Astro last received is what the bucket holds and the lock table holds nothing."""

import hashlib
import random
import time

import pytest
from burst_kit import carrying_version, scenario, ships, write_repo

from functions.shared.dag_bundles import MAIN_BUNDLE
from local_mode.executions import execution_history, watch_execution
from local_mode.scenario import prepare, run_scenario
from local_mode.world import LocalWorld
from testkit import (
    PER_REPO_BUNDLES,
    SHORT_FUNCTION_TIMEOUTS,
    execution_output,
    lock_items_once_told,
    recovery_arn,
    wait_until_ended,
)

PREFIX = "dags/analytics/production/"
PUSHES = 6
# Up to this long before and after each handler: enough to reorder steps that even timing keeps in one order.
MOST_DELAY_SECONDS = 0.3


def bucket_digests(world: LocalWorld) -> dict[str, str]:
    """What the deployment's prefix holds, as the stand-in records what it received: `<repo>/<path>` -> SHA-256."""
    s3 = world.client("s3")
    return {key.removeprefix(PREFIX): hashlib.sha256(
        s3.get_object(Bucket=world.dag_bucket, Key=key)["Body"].read()).hexdigest()
        for key in world.dag_keys(PREFIX)}


def run_uneven_burst(world: LocalWorld, folder, pushes: list[tuple[str, str]], seed: int) -> list:
    with world.uneven_invocations(MOST_DELAY_SECONDS, seed), world.duplicate_stream_records():
        return [outcome.result for outcome in run_scenario(world, scenario(folder, pushes, concurrent=True))]


def landed_in_order(world: LocalWorld, bundle: str | None = None) -> list[dict]:
    """The ships of one Dag bundle (the main one by default) that Astro accepted, each with what it received as
    `<repo>/<path>`, once checked that every ship of the bundle, failed ones too, began after the one before ended."""
    every = [ship for ship in ships(world) if ship["bundle"] == (bundle or MAIN_BUNDLE)]
    assert all(earlier["end"] <= later["start"] for earlier, later in zip(every, every[1:]))
    inside = f"{bundle}/" if bundle else ""
    return [{**ship, "received": {inside + path: digest for path, digest in ship["received"].items()}}
            for ship in every if ship["outcome"] == "deployed"]


def assert_each_names_its_commit(world: LocalWorld, folder, landed: list[dict], results: list,
                                 pushes: list[tuple[str, str]]) -> None:
    """Every execution that succeeded names a version (one ship's) that holds exactly its commit."""
    by_version = {ship["version"]: ship["received"] for ship in landed}
    assert len(by_version) == len(landed)
    for result, (repo, commit) in zip(results, pushes):
        if result.status == "SUCCEEDED":
            version, _ = carrying_version(world, result)
            path, digest = write_repo(folder, repo, commit)
            # Exactly its commit: a push that finds its repo's change waiting for a ship ships that change first.
            assert by_version[version][path] == digest, (result.name, version)


def assert_settled(world: LocalWorld, last_received: dict[str, str]) -> None:
    """What Astro last received is what the bucket holds, each repo whole at one commit; nothing is left in the
    lock table, and no wake-up was dropped."""
    assert last_received == bucket_digests(world)
    assert lock_items_once_told(world) == []
    assert world.stream_batches_dropped() == []


@pytest.mark.parametrize("seed", [1, 2])
def test_an_uneven_burst_lands_every_commit_in_ordered_ships(tmp_path, seed):
    # Two pushes per repo: a repo's second change must never overtake its first.
    pushes = [(f"team_{index % 3}", f"c{seed}{index}a") for index in range(PUSHES)]
    with LocalWorld(tmp_path / "out") as world:
        results = run_uneven_burst(world, tmp_path / "dags", pushes, seed)

        assert [result.status for result in results] == ["SUCCEEDED"] * PUSHES, [
            (result.name, result.failed_state, result.error, result.cause) for result in results]
        landed = landed_in_order(world)
        assert_each_names_its_commit(world, tmp_path / "expected", landed, results, pushes)
        assert_settled(world, landed[-1]["received"])


@pytest.mark.parametrize("seed", [4])
def test_an_uneven_burst_with_a_failed_shared_ship_loses_nothing(tmp_path, seed):
    pushes = [(f"team_{index}", f"f{seed}{index}b") for index in range(PUSHES)]
    with LocalWorld(tmp_path / "out") as world:
        world.fail_next_deploys(1)
        results = run_uneven_burst(world, tmp_path / "dags", pushes, seed)

        failed = [result for result in results if result.status != "SUCCEEDED"]
        assert [(result.status, result.failed_state) for result in failed] == [("FAILED", "Deploy")]
        assert "Rollback" in failed[0].states and len(world.notifications()) == 1
        landed = landed_in_order(world)
        assert_each_names_its_commit(world, tmp_path / "expected", landed, results, pushes)
        [(repo, _)] = [push for result, push in zip(results, pushes) if result is failed[0]]
        # Its repo was new: rolled back to nothing, in the bucket and in what Astro last received.
        assert not any(key.startswith(f"{PREFIX}{repo}/") for key in world.dag_keys(PREFIX))
        # Each execution whose change the failed ship carried (deferred when it gathered: its commit was in no
        # earlier ship) is told so, and of no other ship.
        told_of_failure = [ship for result in results if result.status == "SUCCEEDED"
                           for ship in execution_output(world, result.arn).get("carried", {}).get("failed_ships", [])]
        broken = next(index for index, ship in enumerate(ships(world)) if ship["outcome"] == "failed")
        earlier = {item for ship in ships(world)[:broken] for item in ship["received"].items()}
        carried = [result.name for result, (repo, commit) in zip(results, pushes) if result is not failed[0] and
                   write_repo(tmp_path / "expected", repo, commit) in set(ships(world)[broken]["received"].items())
                   - earlier]
        assert sorted(told_of_failure) == [failed[0].name] * len(carried), carried
        assert_settled(world, landed[-1]["received"])


# Where an execution can be stopped with its change under way: each step that changes, gathers or ships, and the
# waits between them.
STOP_STATES = ("WaitForLock", "Snapshot", "ClearPrefix", "Upload", "ShipOrDefer", "DeferShip", "Deploy")


def stop_the_first_in(world: LocalWorld, arns: list[str], state: str, skip: int) -> int | None:
    """Stop the execution that enters `state` after `skip` others did, as soon as it does; return its index (None
    if too few ever entered it)."""
    entered: list[int] = []
    while True:
        histories = [execution_history(world, arn) for arn in arns]
        for index, events in enumerate(histories):
            if index not in entered and any(
                    event.get("stateEnteredEventDetails", {}).get("name") == state for event in events):
                entered.append(index)
        if len(entered) > skip:
            world.client("stepfunctions").stop_execution(executionArn=arns[entered[skip]], cause="test: withdrawn")
            return entered[skip]
        if all(any(event["type"].startswith("Execution") and event["type"] != "ExecutionStarted"
                   for event in events) for events in histories):
            return None
        time.sleep(0.02)


@pytest.mark.parametrize("seed", [9])
def test_an_uneven_burst_with_an_execution_stopped_in_a_random_state_loses_nothing(tmp_path, seed):
    pushes = [(f"team_{index}", f"d{seed}{index}c") for index in range(PUSHES)]
    chosen = random.Random(seed)
    state, skip = chosen.choice(STOP_STATES), chosen.randrange(2)
    with LocalWorld(tmp_path / "out", context_overrides=SHORT_FUNCTION_TIMEOUTS) as world:
        with world.uneven_invocations(MOST_DELAY_SECONDS, seed), world.duplicate_stream_records():
            prepared = [prepare(world, request) for request in scenario(tmp_path / "dags", pushes).requests]
            arns = [world.start_execution(execution_input, name) for name, execution_input in prepared]
            stopped = stop_the_first_in(world, arns, state, skip)
            results = [watch_execution(world, arn) for arn in arns]
            if stopped is not None:
                assert wait_until_ended(world, recovery_arn(world, results[stopped].name))["status"] == "SUCCEEDED"

        assert [result.status for index, result in enumerate(results) if index != stopped] == [
            "SUCCEEDED"] * (PUSHES - (stopped is not None)), state
        landed = landed_in_order(world)
        assert_each_names_its_commit(world, tmp_path / "expected", landed, results, pushes)
        assert len(world.notifications()) == (stopped is not None)
        # The stopped execution's repo is whole, its new commit or nothing, and Astro last received the bucket.
        assert_settled(world, landed[-1]["received"])


@pytest.mark.parametrize("seed", [10])
def test_uneven_pushes_to_per_repo_bundles_leave_each_bundle_equal_to_its_prefix(tmp_path, seed):
    # Per-repo Dag bundles ship apart: each repo's ships in order, the last one what its prefix holds.
    pushes = [(f"team_{index % 3}", f"e{seed}{index}d") for index in range(PUSHES)]
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        results = run_uneven_burst(world, tmp_path / "dags", pushes, seed)

        assert [result.status for result in results] == ["SUCCEEDED"] * PUSHES, [
            (result.name, result.failed_state, result.error, result.cause) for result in results]
        landed = {repo: landed_in_order(world, repo) for repo in sorted({repo for repo, _ in pushes})}
        assert_each_names_its_commit(world, tmp_path / "expected", [ship for ships_of in landed.values()
                                                                    for ship in ships_of], results, pushes)
        assert_settled(world, {path: digest for ships_of in landed.values()
                               for path, digest in ships_of[-1]["received"].items()})
