"""Repo archives end to end: the real state machine on moto ships each repo from its archive, falls back to the
objects when an archive does not match its prefix, and a rollback leaves archive and prefix agreeing."""

from pathlib import Path

import pytest

from local_mode.astro_standin import BUNDLES_FOLDER
from local_mode.scenario import Outcome, Scenario, run_scenario
from local_mode.world import LocalWorld

DEPLOYMENT_ID = "local-production"
DEPLOYMENT_PREFIX = "dags/analytics/production/"


def write_repo(root: Path, repo: str, version: str, dags: int = 3) -> Path:
    folder = root / repo / version
    (folder / "include").mkdir(parents=True)
    (folder / "include" / "helpers.py").write_text(f"VERSION = {version!r}\n")
    for number in range(dags):
        (folder / f"{repo}_{number}.py").write_text(f"from airflow import DAG\n\nDAG(dag_id='{repo}_{number}')  # {version}\n")
    return folder


def repo_files(root: Path, repo: str, version: str) -> dict[str, bytes]:
    folder = root / repo / version
    return {f"{repo}/{path.relative_to(folder).as_posix()}": path.read_bytes()
            for path in folder.rglob("*") if path.is_file()}


def deploy(world: LocalWorld, repo: str, folder: Path, expect: str = "SUCCEEDED") -> Outcome:
    [outcome] = run_scenario(world, Scenario.from_document({"requests": [{
        "astroWorkspace": "analytics", "astroDeployment": "production", "repo": repo, "dags_dir": str(folder),
        "expect": expect}]}, Path("/")))
    assert outcome.result.status == expect, (outcome.result.failed_state, outcome.result.cause)
    return outcome


def shipped(world: LocalWorld) -> dict[str, bytes]:
    """What the stand-in last received for the deployment's main bundle, file by file."""
    received = world.astro_state_dir / DEPLOYMENT_ID / BUNDLES_FOLDER / "main"
    return {path.relative_to(received).as_posix(): path.read_bytes() for path in received.rglob("*") if path.is_file()}


@pytest.fixture
def world(tmp_path):
    with LocalWorld(tmp_path / "out") as local_world:
        yield local_world


@pytest.fixture
def gets(world) -> list[str]:
    """The key of every GetObject made in the DAG bucket from here on, by any step."""
    keys: list[str] = []

    def record(params, **_):
        if params.get("Bucket") == world.dag_bucket:
            keys.append(params["Key"])

    world.client("s3").meta.events.register("provide-client-params.s3.GetObject", record)
    return keys


def object_gets(gets: list[str], repo: str) -> list[str]:
    return sorted(key for key in gets if key.startswith(f"{DEPLOYMENT_PREFIX}{repo}/"))


def test_a_ship_reads_every_repo_from_its_archive(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1", dags=20))
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v2"))

    assert shipped(world) == repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v1")
    # Deploy: one GET per repo. The other repo's 21 objects are never read; the pushed repo's 4 only once, by
    # Upload as it archives them.
    assert gets.count("archives/analytics/production/finance.zip") == 1
    assert gets.count("archives/analytics/production/sales.zip") == 1
    assert object_gets(gets, "finance") == []
    assert object_gets(gets, "sales") == sorted(DEPLOYMENT_PREFIX + path for path in repo_files(tmp_path, "sales",
                                                                                                    "v2"))


def test_a_prefix_changed_behind_its_archive_is_shipped_as_it_is(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1"))
    # Someone edits the DAG bucket by hand: finance's archive no longer holds its prefix.
    hand_made = b"from airflow import DAG\n\nDAG(dag_id='by_hand')\n"
    world.client("s3").put_object(Bucket=world.dag_bucket, Key=f"{DEPLOYMENT_PREFIX}finance/by_hand.py",
                                  Body=hand_made)
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v2"))

    assert shipped(world) == (repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v1")
                              | {"finance/by_hand.py": hand_made})
    assert f"{DEPLOYMENT_PREFIX}finance/by_hand.py" in object_gets(gets, "finance")


def test_a_rollback_leaves_the_archive_holding_the_restored_prefix(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1"))

    def deploy_listing_fails(params, **_):
        # Only Deploy lists the whole deployment: Upload has written sales v2 and its archive by then.
        if params.get("Prefix") == DEPLOYMENT_PREFIX and "Delimiter" not in params:
            raise RuntimeError("injected fault in Deploy")

    s3 = world.client("s3")
    s3.meta.events.register("provide-client-params.s3.ListObjectsV2", deploy_listing_fails)
    failed = deploy(world, "sales", write_repo(tmp_path, "sales", "v2"), expect="FAILED")
    s3.meta.events.unregister("provide-client-params.s3.ListObjectsV2", deploy_listing_fails)
    assert failed.result.failed_state == "Deploy" and "Rollback" in failed.result.states
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v2"))

    # sales is back to v1, and shipped from the archive the rollback wrote.
    assert shipped(world) == repo_files(tmp_path, "sales", "v1") | repo_files(tmp_path, "finance", "v2")
    assert object_gets(gets, "sales") == []
    assert gets.count("archives/analytics/production/sales.zip") == 1
