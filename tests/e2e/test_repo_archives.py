"""Repo archives and the kept bundle end to end. In a new execution environment, the real state machine on moto
ships each repo from its archive, reads a repo that changed (a push, a hand edit, a rollback) object by object and
archives it for the next ship. In a warm one, the bundle the last ship kept serves every file still in the prefix,
and only what changed is read. Either way what ships is exactly the prefix."""

import traceback
from pathlib import Path

import pytest

from local_mode.astro_standin import BUNDLES_FOLDER
from local_mode.scenario import Outcome, Scenario, run_scenario
from local_mode.world import LocalWorld

DEPLOYMENT_ID = "local-production"
DEPLOYMENT_PREFIX = "dags/analytics/production/"
DEPLOY_FOLDER = str(Path("functions", "deploy"))


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


def deploy(world: LocalWorld, repo: str, folder: Path, expect: str = "SUCCEEDED", warm: bool = False) -> Outcome:
    """One push; its Deploy in a new execution environment unless `warm` (it then finds the last ship's bundle)."""
    if not warm:
        world.new_deploy_environment()
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
    """The key of every GetObject the Deploy step makes in the DAG bucket from here on (Parse and Snapshot also
    read the other repos' live DAG files, for their dag_ids: that is not gathering)."""
    keys: list[str] = []

    def record(params, **_):
        made_by_deploy = any(DEPLOY_FOLDER in frame.filename for frame in traceback.extract_stack())
        if params.get("Bucket") == world.dag_bucket and made_by_deploy:
            keys.append(params["Key"])

    world.client("s3").meta.events.register("provide-client-params.s3.GetObject", record)
    return keys


def object_gets(gets: list[str], repo: str) -> list[str]:
    return sorted(key for key in gets if key.startswith(f"{DEPLOYMENT_PREFIX}{repo}/"))


def object_keys(root: Path, repo: str, version: str) -> list[str]:
    return sorted(DEPLOYMENT_PREFIX + path for path in repo_files(root, repo, version))


def test_a_push_reads_its_repo_once_and_every_other_repo_from_its_archive(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1", dags=20))
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v2"))

    assert shipped(world) == repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v1")
    # One GET per archive. The other repo's 21 objects are never read; the pushed repo's 4 once each, by Deploy,
    # which archives them as it ships them (Deploy reads nothing else).
    assert gets.count("archives/analytics/production/finance.zip") == 1
    assert gets.count("archives/analytics/production/sales.zip") == 1
    assert object_gets(gets, "finance") == []
    assert object_gets(gets, "sales") == object_keys(tmp_path, "sales", "v2")
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v2", dags=20))

    # sales comes from the archive the previous ship wrote.
    assert shipped(world) == repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v2")
    assert object_gets(gets, "sales") == []
    assert object_gets(gets, "finance") == object_keys(tmp_path, "finance", "v2")


def test_a_prefix_changed_behind_its_archive_is_shipped_as_it_is(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1"))
    # Someone edits the DAG bucket by hand: finance's archive no longer holds its prefix.
    hand_made = b"from airflow import DAG\n\nDAG(dag_id='by_hand')\n"
    world.client("s3").put_object(Bucket=world.dag_bucket, Key=f"{DEPLOYMENT_PREFIX}finance/by_hand.py",
                                  Body=hand_made)
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v2"))

    expected = (repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v1")
                | {"finance/by_hand.py": hand_made})
    assert shipped(world) == expected
    assert f"{DEPLOYMENT_PREFIX}finance/by_hand.py" in object_gets(gets, "finance")
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v3"))

    # That ship archived finance as it found it, the file added by hand included.
    assert shipped(world) == expected | repo_files(tmp_path, "sales", "v3")
    assert object_gets(gets, "finance") == []


def test_after_a_rollback_the_next_ship_holds_exactly_the_restored_prefix(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1"))
    s3 = world.client("s3")

    archiving: list[str] = []

    def note_the_archive(params, **_):
        if params.get("Key") == "archives/analytics/production/sales.zip":
            archiving.append(params["Key"])

    def fail_once_archived(**_):
        # Deploy has gathered sales v2 and written its archive; then it fails, as a failed CLI run would.
        if archiving:
            archiving.clear()
            raise RuntimeError("injected fault in Deploy")

    s3.meta.events.register("provide-client-params.s3.PutObject", note_the_archive)
    s3.meta.events.register("after-call.s3.PutObject", fail_once_archived)
    failed = deploy(world, "sales", write_repo(tmp_path, "sales", "v2"), expect="FAILED")
    s3.meta.events.unregister("provide-client-params.s3.PutObject", note_the_archive)
    s3.meta.events.unregister("after-call.s3.PutObject", fail_once_archived)
    assert failed.result.failed_state == "Deploy" and "Rollback" in failed.result.states
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v2"))

    # sales is back to v1: its archive (of v2) is stale, so sales is read object by object, then archived again.
    assert shipped(world) == repo_files(tmp_path, "sales", "v1") | repo_files(tmp_path, "finance", "v2")
    assert object_gets(gets, "sales") == object_keys(tmp_path, "sales", "v1")
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v3"))

    assert shipped(world) == repo_files(tmp_path, "sales", "v1") | repo_files(tmp_path, "finance", "v3")
    assert object_gets(gets, "sales") == []


def test_in_a_warm_environment_a_push_reads_only_its_own_repo(world, gets, tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1", dags=20), warm=True)
    gets.clear()

    deploy(world, "sales", write_repo(tmp_path, "sales", "v2"), warm=True)

    assert shipped(world) == repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v1")
    # finance is left in place: neither its archive nor its objects are read. sales's archive is tried: its
    # ClearPrefix removed it.
    assert [key for key in gets if "finance" in key] == []
    assert object_gets(gets, "sales") == object_keys(tmp_path, "sales", "v2")
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v2", dags=20), warm=True)

    assert [key for key in gets if "sales" in key] == []
    assert shipped(world) == repo_files(tmp_path, "sales", "v2") | repo_files(tmp_path, "finance", "v2")


def test_in_a_warm_environment_a_rollback_after_a_failed_cli_run_ships_exactly_the_restored_prefix(world, gets,
                                                                                                  tmp_path):
    deploy(world, "sales", write_repo(tmp_path, "sales", "v1"))
    deploy(world, "finance", write_repo(tmp_path, "finance", "v1"), warm=True)
    deploy(world, "ops", write_repo(tmp_path, "ops", "v1"), warm=True)
    # Deploy gathers sales v2 (and keeps that bundle), then the CLI fails: the prefix is rolled back to v1.
    world.fail_next_deploys(1)
    failed = deploy(world, "sales", write_repo(tmp_path, "sales", "v2"), expect="FAILED", warm=True)
    assert failed.result.failed_state == "Deploy" and "Rollback" in failed.result.states
    gets.clear()

    deploy(world, "finance", write_repo(tmp_path, "finance", "v2"), warm=True)

    # The kept files of sales are v2's: the listing names v1's objects, so they are read again. ops is left in place.
    assert shipped(world) == (repo_files(tmp_path, "sales", "v1") | repo_files(tmp_path, "finance", "v2")
                              | repo_files(tmp_path, "ops", "v1"))
    assert object_gets(gets, "sales") == object_keys(tmp_path, "sales", "v1")
    assert [key for key in gets if "ops" in key] == []
