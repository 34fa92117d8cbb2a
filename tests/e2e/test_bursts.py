"""Bursts on the shared main bundle, end to end: pushes that arrive together coalesce into few ships, strictly
ordered, and each execution says which DAG bundle version carries its commit; a failed shared ship and a stopped
carried execution lose nothing (functions/shared/deferred_ships.py)."""

from burst_kit import carrying_version, scenario, ships, write_repo
from local_mode.executions import watch_execution
from local_mode.scenario import run_scenario
from local_mode.world import LocalWorld
from testkit import execution_output, lock_items_once_told, start_behind_a_held_deploy


def test_a_burst_of_eight_pushes_coalesces_into_at_most_three_ordered_ships_and_every_commit_lands(tmp_path):
    pushes = [(f"team_{index}", f"c0d{index}") for index in range(8)]
    with LocalWorld(tmp_path / "out") as world:
        results = [outcome.result for outcome in run_scenario(world, scenario(tmp_path / "dags", pushes, True))]

        assert [result.status for result in results] == ["SUCCEEDED"] * 8
        landed = [ship for ship in ships(world) if ship["outcome"] == "deployed"]
        # Coalesced: far fewer ships than pushes; strictly ordered: none overlaps the next.
        assert len(landed) <= 3, [ship["files"] for ship in landed]
        assert all(earlier["end"] <= later["start"] for earlier, later in zip(landed, landed[1:]))
        carried = [result for result in results if result.states[-1] == "Deployed by another ship"]
        assert len(carried) >= 8 - len(landed)
        by_version = {ship["version"]: ship["received"] for ship in landed}
        names = {result.name for result in results}
        for result, (repo, commit) in zip(results, pushes):
            version, shipped_by = carrying_version(world, result)
            # The version it names holds its commit, and a carrier named is one of the burst's.
            path, digest = write_repo(tmp_path / "expected", repo, commit)
            assert by_version[version][path] == digest, (result.name, version)
            assert shipped_by is None or shipped_by in names - {result.name}
        # The last ship holds every repo's commit.
        assert {path: digest for path, digest in landed[-1]["received"].items()} == dict(
            write_repo(tmp_path / "expected", repo, commit) for repo, commit in pushes)
        assert lock_items_once_told(world) == []


def test_a_push_to_a_repo_whose_change_waits_for_a_ship_ships_that_change_first(tmp_path):
    # marketing_etl's ship held; team_a at commit aaa1 and team_b change their repos and defer (a ship is in flight);
    # team_a again at aaa2 waits for that ship to end: its repo's change waits for the next ship.
    pushes = [("marketing_etl", "abc1"), ("team_a", "aaa1"), ("team_b", "bbb1"), ("team_a", "aaa2")]
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", pushes),
                                              ["DeferShip", "DeferShip", "WaitForLock"])
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED"] * 4
        # Woken by the ship's end, a2, before replacing a1, shipped a1 and b1.
        assert "ShipDeferredChanges" in results[3].states
        first, flushed, last = ships(world)
        a1_path, a1 = write_repo(tmp_path / "expected", "team_a", "aaa1")
        b1_path, b1 = write_repo(tmp_path / "expected", "team_b", "bbb1")
        _, a2 = write_repo(tmp_path / "expected", "team_a", "aaa2")
        assert (flushed["received"][a1_path], flushed["received"][b1_path]) == (a1, b1)
        assert (last["received"][a1_path], last["received"][b1_path]) == (a2, b1)
        assert carrying_version(world, results[1]) == (flushed["version"], results[3].name)
        assert carrying_version(world, results[2]) == (flushed["version"], results[3].name)
        assert carrying_version(world, results[3]) == (last["version"], None)
        assert lock_items_once_told(world) == []


def test_a_failed_shared_ship_is_rolled_back_and_the_change_it_carried_ships_again(tmp_path):
    pushes = [("marketing_etl", "abc1"), ("team_a", "aaa1"), ("team_b", "bbb1")]
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", pushes), "DeferShip")
            # The next ship to start, team_a's (the longest deferred) carrying team_b's change, fails.
            world.fail_next_deploys(1)
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
        failed = results[1]
        # Its Deploy had handed the lock over: Rollback ended the ship slot, and no lock release follows.
        assert failed.failed_state == "Deploy"
        assert failed.states[-4:] == ["Rollback", "Ship slot ended?", "Notify", "Failed"]
        assert "The deployment's lock" not in failed.notifications[0].message
        assert [notification.subject for notification in failed.notifications] and \
            len(world.notifications()) == 1
        # team_b was told that team_a's ship carried its change and failed (once team_a was rolled back), then
        # shipped it itself.
        output = execution_output(world, arns[2])
        assert output["carried"]["shipped"] is False and output["carried"]["failed_ships"] == [failed.name]
        assert results[2].states[-3:] == ["Deploy", "Lock handed over?", "Deployed"]
        first, broken, again = ships(world)
        b1_path, b1 = write_repo(tmp_path / "expected", "team_b", "bbb1")
        assert broken["outcome"] == "failed" and again["outcome"] == "deployed"
        # What Astro last received is what the bucket holds: team_b's commit, team_a rolled back (it was new).
        assert again["received"][b1_path] == b1 and not any(path.startswith("team_a/") for path in again["received"])
        assert sorted(key.split("/")[3] for key in world.dag_keys("dags/analytics/production/")) == [
            "marketing_etl", "team_b"]
        assert lock_items_once_told(world) == []


def test_a_carried_execution_stopped_while_deferred_is_still_shipped_by_the_carrier(tmp_path):
    pushes = [("marketing_etl", "abc1"), ("team_a", "aaa1"), ("team_b", "bbb1")]
    with LocalWorld(tmp_path / "out") as world:
        with world.hold_deploys():
            # Both defer: a ship is in flight. team_a is stopped while it waits for a ship to carry its change.
            arns = start_behind_a_held_deploy(world, scenario(tmp_path / "dags", pushes), "DeferShip")
            world.client("stepfunctions").stop_execution(executionArn=arns[1], cause="test: withdrawn")
        results = [watch_execution(world, arn) for arn in arns]

        assert [result.status for result in results] == ["SUCCEEDED", "ABORTED", "SUCCEEDED"]
        # Its change is in the bucket and in what Astro last received: nothing differs.
        last = ships(world)[-1]
        a1_path, a1 = write_repo(tmp_path / "expected", "team_a", "aaa1")
        assert last["received"][a1_path] == a1
        assert execution_output(world, arns[2])["deploy"]["carried"] == [results[1].name]
        assert lock_items_once_told(world) == []

