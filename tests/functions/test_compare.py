"""CompareWithLive: under the lock, the execution's plan against what is live for its repo."""

from testkit import DAG_BUCKET, emitted_metrics

from functions.compare import app
from functions.shared.execution_state import LiveComparison
from functions.shared.plan_store import Plan, PlannedFile, save_plan


def test_the_handler_compares_the_execution_s_plan_and_says_why(buckets, monkeypatch, lambda_context, capsys):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    save_plan(DAG_BUCKET, Plan(
        workspace="ws", deployment="dep", repo="repo-a", execution="exec-1", prefix="dags/ws/dep/repo-a/",
        files=[PlannedFile(source_bucket="s", source_key="k", etag='"00ff"', size=1, path="a.py", kind="dag",
                           dag_ids=["a"])],
    ))
    state = {"workspace": "ws", "deployment": "dep", "repo": "repo-a", "execution": "exec-1", "bundle": "main",
             "lock": {"key": "ws/dep", "acquired": True, "waiting_since": 0}}

    comparison = LiveComparison.from_json(app.handler(state, lambda_context))

    assert not comparison.unchanged and comparison.reason.startswith("nothing is recorded as live")
    assert comparison.diff.dag_ids_added == ["a"]
    assert emitted_metrics(capsys.readouterr().out, repo="repo-a")["compare.success"] == 1
