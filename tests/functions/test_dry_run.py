"""DryRun: the report of a dry run, from Parse's output: its problems, or the diff against what is live and what
Deploy would refuse."""

import pytest
from testkit import DAG_BUCKET, emitted_metrics

from functions.dry_run import app
from functions.shared.execution_state import DryRunReport, RefusedDryRun
from functions.shared.plan_store import Plan, PlannedFile, save_plan


def plan(paths: list[str], bundle: str = "main", allow_empty: bool = False) -> Plan:
    files = [PlannedFile(source_bucket="src", source_key=path, etag='"00ff"', size=1, path=path, kind="dependency")
             for path in paths]
    return Plan(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1", bundle=bundle,
                prefix="dags/ws/dep/repo-a/", allow_empty_deployment=allow_empty, dry_run=True, files=files)


def summary(bundle: str = "main") -> dict:
    return {"workspace": "ws", "deployment": "dep", "repo": "repo-a", "execution": "exec-1", "bundle": bundle,
            "prefix": "dags/ws/dep/repo-a/", "plan": f"s3://{DAG_BUCKET}/plans/exec-1.json", "files": 1, "bytes": 1,
            "dag_count": 0, "dag_ids": [], "lock_key": "ws/dep", "dry_run": True, "warnings": ["a warning"]}


@pytest.fixture
def dry_run_env(monkeypatch, buckets):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    return buckets


def report(event: dict, lambda_context) -> DryRunReport:
    return DryRunReport.from_json(app.handler(event, lambda_context))


def test_parse_refusals_are_the_report_s_problems(dry_run_env, lambda_context):
    refused = RefusedDryRun(error="InvalidRequest", cause="2 problems in the request: a; b", problems=["a", "b"])

    result = report(refused.to_json(), lambda_context)

    assert result == DryRunReport(passed=False, problems=["a", "b"], error="InvalidRequest",
                                  cause="2 problems in the request: a; b")


def test_a_clean_request_passes_with_its_diff_and_writes_nothing(dry_run_env, lambda_context, capsys):
    save_plan(DAG_BUCKET, plan(["etl.py", "q.sql"]))
    keys = dry_run_env.list_objects_v2(Bucket=DAG_BUCKET)["KeyCount"]

    result = report(summary(), lambda_context)

    assert result.passed and result.problems == [] and result.error is None
    assert result.comparison.diff.files_added == ["etl.py", "q.sql"] and not result.comparison.unchanged
    assert result.warnings == ["a warning"]
    assert dry_run_env.list_objects_v2(Bucket=DAG_BUCKET)["KeyCount"] == keys
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["dry_run.success"] == 1


def test_a_main_bundle_left_without_python_is_what_deploy_would_refuse(dry_run_env, lambda_context):
    save_plan(DAG_BUCKET, plan(["q.sql"]))

    result = report(summary(), lambda_context)

    assert not result.passed and result.error == "EmptyBundleRefused"
    assert result.cause.startswith("the main Dag bundle of ws/dep would hold no .py file")
    assert result.comparison.diff.added == 1


def test_another_repo_s_python_keeps_the_main_bundle_but_not_a_per_repo_one(dry_run_env, lambda_context):
    dry_run_env.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/dag.py", Body=b"x")
    save_plan(DAG_BUCKET, plan(["q.sql"]))
    assert report(summary(), lambda_context).passed

    save_plan(DAG_BUCKET, plan(["q.sql"], bundle="repo-a"))
    per_repo = report(summary("repo-a"), lambda_context)
    assert not per_repo.passed and per_repo.cause.startswith("Dag bundle repo-a of ws/dep would hold no .py file")


def test_emptying_on_purpose_passes(dry_run_env, lambda_context):
    save_plan(DAG_BUCKET, plan([], allow_empty=True))
    assert report(summary(), lambda_context).passed
