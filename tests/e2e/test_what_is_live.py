"""What is live, dry runs and unchanged requests, end to end: the real state machine on moto, the deploy step and the
astro stand-in. The manifests must say what Astro last received, also after a failed ship and its rollback."""

import json
import shutil
from pathlib import Path

from functions.shared.manifest import read_bundle_ship, read_repo_manifest
from functions.status.describing import describe_deployment
from functions.status.targets import describe_targets
from local_mode.astro_standin import bundle_versions, read_invocations
from local_mode.executions import ExecutionResult
from local_mode.project import EXAMPLES_DIR
from local_mode.scenario import Scenario, run_scenario
from local_mode.world import LocalWorld
from testkit import PER_REPO_BUNDLES, fake_astro, lock_items

WORKSPACE, DEPLOYMENT = "analytics", "production"
SHIP_STATES = {"Snapshot", "ClearPrefix", "Upload", "Deploy"}


def copy_example(tmp_path: Path, repo: str) -> Path:
    folder = tmp_path / "repos" / repo
    shutil.copytree(EXAMPLES_DIR / repo, folder, dirs_exist_ok=True)
    return folder


def run(world: LocalWorld, repo: str, folder: Path, expect: str = "SUCCEEDED", deployment: str = DEPLOYMENT,
        **options) -> ExecutionResult:
    request = {"astroWorkspace": WORKSPACE, "astroDeployment": deployment, "repo": repo, "dags_dir": str(folder),
               "expect": expect, **options}
    [outcome] = run_scenario(world, Scenario.from_document({"requests": [request]}, Path("/")))
    assert outcome.as_expected, (outcome.result.states, outcome.result.error, outcome.result.cause)
    return outcome.result


def output(world: LocalWorld, result: ExecutionResult) -> dict:
    return json.loads(world.client("stepfunctions").describe_execution(executionArn=result.arn).get("output") or "{}")


def bucket_keys(world: LocalWorld) -> dict[str, str]:
    """Every key of the DAG bucket but the plans, with its ETag."""
    pages = world.client("s3").get_paginator("list_objects_v2").paginate(Bucket=world.dag_bucket)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", [])
            if not item["Key"].startswith("plans/")}



def test_each_deploy_records_what_it_shipped_and_targets_show_it_in_the_main_bundle(tmp_path):
    with LocalWorld(tmp_path / "out") as world:
        marketing = run(world, "marketing_etl", copy_example(tmp_path, "marketing_etl"), commit="aaaa1111")
        finance = run(world, "finance_reports", copy_example(tmp_path, "finance_reports"), commit="bbbb2222")
        [_, second_ship] = read_invocations(world.astro_state_dir)

        manifest = read_repo_manifest(world.dag_bucket, WORKSPACE, DEPLOYMENT, "marketing_etl")
        assert (manifest.commit, manifest.execution, manifest.bundle) == ("aaaa1111", marketing.name, "main")
        assert {entry.path for entry in manifest.files} == {
            ".airflowignore", "campaign_performance.py", "email_engagement.py", "include/__init__.py",
            "include/attribution.py", "sql/campaign_performance.sql",
        }
        assert all(entry.checksum.startswith("md5:") and entry.stored_etag for entry in manifest.files)
        assert {dag["dag_id"]: dag["path"] for dag in manifest.dags()} == {
            "marketing_campaign_performance": "campaign_performance.py",
            "marketing_email_engagement": "email_engagement.py",
        }
        ship = read_bundle_ship(world.dag_bucket, WORKSPACE, DEPLOYMENT, "main")
        assert (ship.state, ship.execution, ship.version) == ("shipped", finance.name, second_ship["version"])
        assert [shipped.repo for shipped in ship.repos] == ["finance_reports", "marketing_etl"]

        targets = describe_targets(world.dag_bucket, WORKSPACE, DEPLOYMENT)
        assert targets.deployment_id == "local-production"
        assert [(repo.repo, repo.commit, repo.in_last_ship) for repo in targets.repos] == [
            ("finance_reports", "bbbb2222", True), ("marketing_etl", "aaaa1111", True),
        ]
        # Each repo's deploy names the version Astro answered to it; finance's ship carried marketing's files too.
        assert targets.repos[1].bundle_version != second_ship["version"]
        assert targets.repos[0].bundle_version == second_ship["version"]


def test_an_unchanged_request_skips_the_ship_and_force_ships_it_anyway(tmp_path):
    folder = copy_example(tmp_path, "marketing_etl")
    with LocalWorld(tmp_path / "out") as world:
        first = run(world, "marketing_etl", folder)
        keys = bucket_keys(world)

        again = run(world, "marketing_etl", folder)

        assert again.states[-3:] == ["Unchanged?", "Release lock (unchanged)", "Unchanged"]
        assert not SHIP_STATES & set(again.states)
        assert len(read_invocations(world.astro_state_dir)) == 1
        assert bucket_keys(world) == keys and lock_items(world) == []
        status = describe_deployment(world.state_machine_arn, again.name)
        assert status.unchanged and status.live["live_execution"] == first.name
        assert "the files are those execution" in status.live["reason"]

        forced = run(world, "marketing_etl", folder, force=True)

        assert SHIP_STATES <= set(forced.states)
        assert len(read_invocations(world.astro_state_dir)) == 2
        assert not describe_deployment(world.state_machine_arn, forced.name).unchanged
        assert read_repo_manifest(world.dag_bucket, WORKSPACE, DEPLOYMENT, "marketing_etl").execution == forced.name


def test_a_changed_file_ships_and_the_diff_says_what_changed(tmp_path):
    folder = copy_example(tmp_path, "marketing_etl")
    with LocalWorld(tmp_path / "out") as world:
        run(world, "marketing_etl", folder)
        (folder / "include" / "attribution.py").write_text("VERSION = 'two'\n")
        (folder / "email_engagement.py").unlink()

        changed = run(world, "marketing_etl", folder)

        assert "Deploy" in changed.states
        diff = output(world, changed)["live"]["diff"]
        assert (diff["added"], diff["changed"], diff["removed"]) == (0, 1, 1)
        assert (diff["files_changed"], diff["files_removed"]) == (["include/attribution.py"], ["email_engagement.py"])
        assert diff["dag_ids_removed"] == ["marketing_email_engagement"]


def test_after_a_failed_ship_and_its_rollback_nothing_counts_as_unchanged_until_a_ship_confirms(tmp_path, monkeypatch):
    folder = copy_example(tmp_path, "marketing_etl")
    with LocalWorld(tmp_path / "out") as world:
        first = run(world, "marketing_etl", folder, commit="aaaa1111")
        (folder / "include" / "attribution.py").write_text("VERSION = 'two'\n")
        # The CLI fails after the upload may have reached Astro: what Astro holds is unknown.
        failing = fake_astro(tmp_path, 'print("Error: lost", file=sys.stderr); sys.exit(1)')
        monkeypatch.setenv("ASTRO_CLI", str(failing))
        failed = run(world, "marketing_etl", folder, expect="FAILED", commit="bbbb2222")
        assert failed.failed_state == "Deploy"

        # The repo's record is still the deploy that succeeded; its bundle's last ship is not confirmed.
        assert read_repo_manifest(world.dag_bucket, WORKSPACE, DEPLOYMENT, "marketing_etl").execution == first.name
        ship = read_bundle_ship(world.dag_bucket, WORKSPACE, DEPLOYMENT, "main")
        assert (ship.state, ship.execution, ship.commit) == ("shipping", failed.name, "bbbb2222")
        [repo] = describe_targets(world.dag_bucket, WORKSPACE, DEPLOYMENT).repos
        assert (repo.commit, repo.in_last_ship) == ("aaaa1111", False)

        # The first commit again: the files match the record, but Astro may hold the failed ship's: it ships.
        monkeypatch.undo()
        shutil.copy(EXAMPLES_DIR / "marketing_etl/include/attribution.py", folder / "include" / "attribution.py")
        again = run(world, "marketing_etl", folder, commit="aaaa1111")
        assert "Deploy" in again.states
        assert "never confirmed the last ship" in output(world, again)["live"]["reason"]
        assert read_bundle_ship(world.dag_bucket, WORKSPACE, DEPLOYMENT, "main").state == "shipped"
        assert run(world, "marketing_etl", folder, commit="aaaa1111").states[-1] == "Unchanged"


def test_per_repo_bundles_record_their_own_ship_and_skip_unchanged_requests(tmp_path):
    folder = copy_example(tmp_path, "customer_churn")
    with LocalWorld(tmp_path / "out", context_overrides=PER_REPO_BUNDLES) as world:
        run(world, "customer_churn", folder, deployment="ml")
        versions = bundle_versions(world.astro_state_dir, "local-ml")

        again = run(world, "customer_churn", folder, deployment="ml")

        assert again.states[-1] == "Unchanged"
        assert bundle_versions(world.astro_state_dir, "local-ml") == versions
        [repo] = describe_targets(world.dag_bucket, WORKSPACE, "ml").repos
        assert (repo.bundle, repo.bundle_version, repo.in_last_ship) == (
            "customer_churn", versions["customer_churn"], True,
        )
        assert [dag["dag_id"] for dag in repo.dags] == ["churn_scores"]


def test_a_dry_run_reports_the_diff_and_changes_nothing(tmp_path):
    folder = copy_example(tmp_path, "marketing_etl")
    with LocalWorld(tmp_path / "out") as world:
        run(world, "marketing_etl", folder)
        keys = bucket_keys(world)
        (folder / "new_dag.py").write_text("from airflow import DAG\nDAG(dag_id='brand_new')\n")

        dry = run(world, "marketing_etl", folder, dry_run=True)

        assert dry.states == ["Parse", "Dry run?", "DryRun", "Dry run passed?", "Dry run passed"]
        report = output(world, dry)["dry_run_report"]
        assert report["passed"] and report["problems"] == []
        assert report["comparison"]["diff"]["files_added"] == ["new_dag.py"]
        assert report["comparison"]["diff"]["dag_ids_added"] == ["brand_new"]
        assert not report["comparison"]["unchanged"]
        # No lock, no write but Parse's plan, no ship, no notification.
        assert bucket_keys(world) == keys and lock_items(world) == []
        assert len(read_invocations(world.astro_state_dir)) == 1 and dry.notifications == []
        assert describe_deployment(world.state_machine_arn, dry.name).dry_run["passed"]


def test_a_dry_run_with_problems_fails_with_every_problem_and_notifies_no_one(tmp_path):
    folder = copy_example(tmp_path, "marketing_etl")
    # Files Airflow parses as DAG files (they name airflow and a DAG) that do not compile.
    (folder / "broken.py").write_text("from airflow import DAG\ndef broken(:\n")
    (folder / "also_broken.py").write_text("from airflow import DAG\nDAG(\n")
    with LocalWorld(tmp_path / "out") as world:
        dry = run(world, "marketing_etl", folder, expect="FAILED", dry_run=True)

        assert dry.states == ["Parse", "Dry run?", "DryRun", "Dry run passed?", "Dry run found problems"]
        assert dry.error == "InvalidRequest" and dry.notifications == []
        assert "broken.py: does not compile" in dry.cause and "also_broken.py: does not compile" in dry.cause
        status = describe_deployment(world.state_machine_arn, dry.name)
        assert status.state == "Dry run found problems"
        assert len(status.dry_run["problems"]) == 2 and status.dry_run["comparison"] is None
        assert bucket_keys(world) == {} and lock_items(world) == []


def test_a_dry_run_finds_what_deploy_would_refuse_an_emptied_bundle(tmp_path):
    folder = tmp_path / "repos" / "only_sql"
    folder.mkdir(parents=True)
    (folder / "report.sql").write_text("select 1")
    with LocalWorld(tmp_path / "out") as world:
        dry = run(world, "only_sql", folder, expect="FAILED", dry_run=True)

        assert (dry.states[-1], dry.error) == ("Dry run found problems", "EmptyBundleRefused")
        assert "would hold no .py file" in dry.cause
        assert describe_deployment(world.state_machine_arn, dry.name).dry_run["comparison"]["diff"]["added"] == 1
