"""Bursts on the shared main bundle under AWS's uneven timing, end to end: every Lambda invocation waits a random
while before and after its handler (cold starts, scheduling) and every wake-up of the lock's stream comes twice
(Lambda's at-least-once delivery). Whatever order the executions' steps then take, nothing is lost: ships stay
ordered, each execution names a version that carries its commit (or fails, notified), and once all has settled
what Astro last received is what the bucket holds and the lock table holds nothing."""

import hashlib

import pytest
from burst_kit import carrying_version, scenario, ships, write_repo

from local_mode.scenario import run_scenario
from local_mode.world import LocalWorld
from testkit import execution_output, lock_items_once_told

PREFIX = "dags/analytics/production/"
PUSHES = 6
# Up to this long before and after each handler: enough to reorder steps that even timing keeps in one order.
MOST_DELAY_SECONDS = 0.3


def bucket_digests(world: LocalWorld) -> dict[str, str]:
    """What the deployment's prefix holds, as the stand-in records what it received: bundle path -> SHA-256."""
    s3 = world.client("s3")
    return {key.removeprefix(PREFIX): hashlib.sha256(
        s3.get_object(Bucket=world.dag_bucket, Key=key)["Body"].read()).hexdigest()
        for key in world.dag_keys(PREFIX)}


def run_uneven_burst(world: LocalWorld, folder, pushes: list[tuple[str, str]], seed: int) -> list:
    with world.uneven_invocations(MOST_DELAY_SECONDS, seed), world.duplicate_stream_records():
        return [outcome.result for outcome in run_scenario(world, scenario(folder, pushes, concurrent=True))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_uneven_burst_lands_every_commit_in_ordered_ships(tmp_path, seed):
    # Two pushes per repo: a repo's second change must never overtake its first.
    pushes = [(f"team_{index % 3}", f"c{seed}{index}a") for index in range(PUSHES)]
    with LocalWorld(tmp_path / "out") as world:
        results = run_uneven_burst(world, tmp_path / "dags", pushes, seed)

        assert [result.status for result in results] == ["SUCCEEDED"] * PUSHES, [
            (result.name, result.failed_state, result.error, result.cause) for result in results]
        landed = [ship for ship in ships(world) if ship["outcome"] == "deployed"]
        assert all(earlier["end"] <= later["start"] for earlier, later in zip(landed, landed[1:]))
        by_version = {ship["version"]: ship["received"] for ship in landed}
        for result, (repo, commit) in zip(results, pushes):
            version, _ = carrying_version(world, result)
            path, digest = write_repo(tmp_path / "expected", repo, commit)
            # Exactly its commit: a push that finds its repo's change waiting for a ship ships that change first.
            assert by_version[version][path] == digest, (result.name, version)
        # Each repo ends at one of its commits, whole, and Astro last received exactly the bucket.
        assert landed[-1]["received"] == bucket_digests(world)
        assert lock_items_once_told(world) == []
        assert world.stream_batches_dropped() == []


@pytest.mark.parametrize("seed", [4, 5])
def test_an_uneven_burst_with_a_failed_shared_ship_loses_nothing(tmp_path, seed):
    pushes = [(f"team_{index}", f"f{seed}{index}b") for index in range(PUSHES)]
    with LocalWorld(tmp_path / "out") as world:
        world.fail_next_deploys(1)
        results = run_uneven_burst(world, tmp_path / "dags", pushes, seed)

        failed = [result for result in results if result.status != "SUCCEEDED"]
        assert [(result.status, result.failed_state) for result in failed] == [("FAILED", "Deploy")]
        assert "Rollback" in failed[0].states and len(world.notifications()) == 1
        landed = [ship for ship in ships(world) if ship["outcome"] == "deployed"]
        assert all(earlier["end"] <= later["start"] for earlier, later in zip(ships(world), ships(world)[1:]))
        by_version = {ship["version"]: ship["received"] for ship in landed}
        told_of_failure = []
        for result, (repo, commit) in zip(results, pushes):
            path, digest = write_repo(tmp_path / "expected", repo, commit)
            if result.status == "SUCCEEDED":
                version, _ = carrying_version(world, result)
                assert by_version[version][path] == digest, (result.name, version)
                told_of_failure += execution_output(world, result.arn).get("carried", {}).get("failed_ships", [])
            else:
                # Its repo was new: rolled back to nothing, in the bucket and in what Astro last received.
                assert not any(key.startswith(f"{PREFIX}{repo}/") for key in world.dag_keys(PREFIX))
        # Each execution whose change the failed ship carried (deferred when it gathered: its commit was in no
        # earlier ship) is told so, and of no other ship.
        broken = next(index for index, ship in enumerate(ships(world)) if ship["outcome"] == "failed")
        earlier = {item for ship in ships(world)[:broken] for item in ship["received"].items()}
        carried = [result.name for result, (repo, commit) in zip(results, pushes) if result is not failed[0] and
                   write_repo(tmp_path / "expected", repo, commit) in set(ships(world)[broken]["received"].items())
                   - earlier]
        assert sorted(told_of_failure) == [failed[0].name] * len(carried), carried
        assert landed[-1]["received"] == bucket_digests(world)
        assert lock_items_once_told(world) == []
        assert world.stream_batches_dropped() == []
