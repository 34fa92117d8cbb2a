"""Per-repo Dag bundles end to end: the real state machine on moto, the deploy step, the astro stand-in's bundles."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from functions.status.describing import describe_deployment
from local_mode.astro_standin import bundle_versions, last_bundle, read_invocations
from local_mode.scenario import Outcome, Scenario, run_scenario
from local_mode.world import LocalWorld
from testkit import PER_REPO_BUNDLES, lock_items

DEPLOYMENT_ID = "local-ml"


def write_repo(root: Path, repo: str, version: str = "v1", dags: int = 1) -> Path:
    """A repo in the per-repo layout: DAG files at its root importing its helpers from the repo root."""
    folder = root / repo / version
    (folder / "include").mkdir(parents=True)
    (folder / "include" / "__init__.py").write_text("")
    (folder / "include" / "helpers.py").write_text(f"VERSION = {version!r}\n")
    for number in range(dags):
        (folder / f"{repo}_{number}.py").write_text(
            "from airflow import DAG\nfrom include.helpers import VERSION\n\n"
            f"DAG(dag_id='{repo}_{number}', schedule=None, tags=[VERSION])\n"
        )
    return folder


def deploy(world: LocalWorld, folders: dict[str, Path], concurrent: bool = False, expect: str = "SUCCEEDED"
           ) -> list[Outcome]:
    requests = [{"astroWorkspace": "analytics", "astroDeployment": "ml", "repo": repo, "dags_dir": str(folder),
                 "expect": expect} for repo, folder in folders.items()]
    return run_scenario(world, Scenario.from_document({"concurrent": concurrent, "requests": requests}, Path("/")))



def test_each_repo_ships_alone_to_its_own_bundle_and_leaves_the_others(tmp_path):
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        state = world.astro_state_dir
        [churn] = deploy(world, {"churn": write_repo(tmp_path, "churn")})
        [pricing] = deploy(world, {"pricing": write_repo(tmp_path, "pricing", dags=2)})
        versions = bundle_versions(state, DEPLOYMENT_ID)
        [churn_again] = deploy(world, {"churn": write_repo(tmp_path, "churn", "v2")})

        assert [churn.result.status, pricing.result.status, churn_again.result.status] == ["SUCCEEDED"] * 3
        assert last_bundle(state, DEPLOYMENT_ID, "churn") == ["churn_0.py", "include/__init__.py",
                                                              "include/helpers.py"]
        assert last_bundle(state, DEPLOYMENT_ID, "pricing") == ["include/__init__.py", "include/helpers.py",
                                                                "pricing_0.py", "pricing_1.py"]
        assert last_bundle(state, DEPLOYMENT_ID) == []  # main never shipped
        after = bundle_versions(state, DEPLOYMENT_ID)
        assert after["pricing"] == versions["pricing"], "pricing's bundle was redeployed by churn's push"
        assert after["churn"] != versions["churn"]
        ships = read_invocations(state)
        assert [(ship["bundle"], ship["files"]) for ship in ships] == [("churn", 3), ("pricing", 4), ("churn", 3)]
        # The status API names the bundle and the version Astro answered for it.
        status = describe_deployment(world.state_machine_arn, pricing.result.name)
        assert (status.bundle, status.version) == ("pricing", ships[1]["version"])
        assert lock_items(world) == [] and world.notifications() == []


def test_eight_repos_of_one_deployment_ship_at_the_same_time(tmp_path):
    repos = {f"team_{number}": write_repo(tmp_path, f"team_{number}") for number in range(8)}
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world, ThreadPoolExecutor(1) as pool:
        # Deploys land only once all eight have started: executions that waited for each other would never get there.
        with world.hold_deploys():
            running = pool.submit(deploy, world, repos, concurrent=True)
            world.wait_for_held_deploys(len(repos))
        outcomes = running.result()

        assert [outcome.result.status for outcome in outcomes] == ["SUCCEEDED"] * 8, [
            (outcome.result.name, outcome.result.error, outcome.result.cause) for outcome in outcomes
            if outcome.result.status != "SUCCEEDED"]
        assert not any("WaitForLock" in outcome.result.states for outcome in outcomes), "a repo waited for another"
        ships = read_invocations(world.astro_state_dir)
        assert sorted(ship["bundle"] for ship in ships) == sorted(repos)
        # Every ship was in flight at one moment: eight repos took about one ship's time, not eight.
        assert max(ship["start"] for ship in ships) < min(ship["end"] for ship in ships), ships
        assert lock_items(world) == []


def test_a_failed_ship_is_rolled_back_for_its_bundle_alone(tmp_path):
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        deploy(world, {"churn": write_repo(tmp_path, "churn"), "pricing": write_repo(tmp_path, "pricing")})
        state = world.astro_state_dir
        shipped = {bundle: last_bundle(state, DEPLOYMENT_ID, bundle) for bundle in ("churn", "pricing")}
        versions = bundle_versions(state, DEPLOYMENT_ID)
        s3_before = {key: world.client("s3").get_object(Bucket=world.dag_bucket, Key=key)["Body"].read()
                     for key in world.dag_keys("dags/analytics/ml/")}
        broken = tmp_path / "churn" / "no-python"
        broken.mkdir(parents=True)
        (broken / "notes.md").write_text("no DAG file left")

        [failed] = deploy(world, {"churn": broken}, expect="FAILED")

        assert failed.result.error == "EmptyBundleRefused" and failed.result.failed_state == "Deploy"
        assert "every DAG of Dag bundle churn" in failed.result.cause
        assert {key: world.client("s3").get_object(Bucket=world.dag_bucket, Key=key)["Body"].read()
                for key in world.dag_keys("dags/analytics/ml/")} == s3_before
        assert {bundle: last_bundle(state, DEPLOYMENT_ID, bundle) for bundle in shipped} == shipped
        assert bundle_versions(state, DEPLOYMENT_ID) == versions
        [notification] = failed.result.notifications
        assert "at Deploy" in notification.subject and "EmptyBundleRefused" in notification.message
        assert lock_items(world) == []


def test_a_missing_bundle_the_configuration_forbids_creating_fails_with_the_fix(tmp_path):
    context = {"astroDeployments": {"*/*": {"deploymentId": "local-{deployment}", "dagBundles": "per-repo",
                                            "createBundles": False}}}
    with LocalWorld(tmp_path / "out", context_overrides=context) as world:
        [outcome] = deploy(world, {"churn": write_repo(tmp_path, "churn")}, expect="FAILED")

        assert outcome.result.error == "BundleMissing"
        assert "astro deployment bundle create --deployment-id local-ml --name churn" in outcome.result.cause
        assert world.dag_keys("dags/analytics/ml/") == [] and read_invocations(world.astro_state_dir) == []
        assert lock_items(world) == []


def test_a_repo_name_that_maps_to_no_bundle_is_refused_at_parse(tmp_path):
    repo = "a_repository_name_longer_than_32_characters"
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        [outcome] = deploy(world, {repo: write_repo(tmp_path, repo)}, expect="FAILED")

        assert outcome.result.error == "InvalidRequest" and outcome.result.failed_state == "Parse"
        assert f'"bundleNames": {{"{repo}": ' in json.loads(outcome.result.cause)["errorMessage"]
        assert world.dag_keys("dags/") == []
