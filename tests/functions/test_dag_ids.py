"""One dag_id, one file, in the whole deployment: at Parse, and again once the lock is held (Snapshot)."""

import json

import pytest

from functions.shared.dag_ids import (
    DagFileIds, check_dag_ids_still_free, live_dag_id_problems, repo_dag_id_problems,
)
from functions.shared.errors import DagIdTaken
from functions.shared.execution_state import RunScope
from functions.shared.live_repos import read_live_repos
from functions.shared.manifest import LiveFile, RepoManifest, stored_files
from functions.shared.paths import plan_key, repo_manifest_key
from testkit import DAG_BUCKET

DAG = "from airflow import DAG\nDAG({dag_id!r})\n"


def put_live(s3, repo: str, path: str, body: str, commit: str | None = "c0ffee") -> None:
    metadata = {"commit": commit} if commit else {}
    s3.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}", Body=body.encode(), Metadata=metadata)


def test_files_of_the_repo_with_one_dag_id_are_named_once_per_dag_id():
    problems = repo_dag_id_problems([DagFileIds("b.py", ["etl"]), DagFileIds("a.py", ["etl", "other"])])
    assert problems == ["dag_id 'etl' is defined in both a.py and b.py: Airflow keeps only one of them (the file it "
                        "parses last) and the other DAGs disappear: give each its own dag_id"]
    [problem] = repo_dag_id_problems([DagFileIds(f"{number}.py", ["etl"]) for number in range(100)])
    assert problem.startswith("dag_id 'etl' is defined in 100 files: 0.py, 1.py, 10.py, 11.py, 12.py and 95 more")


def test_live_repos_are_read_as_airflow_would_parse_them(buckets):
    put_live(buckets, "finance", "revenue.py", DAG.format(dag_id="finance_revenue"))
    put_live(buckets, "finance", "old/revenue.py", DAG.format(dag_id="finance_old"))
    put_live(buckets, "finance", ".airflowignore", "old/\n")
    put_live(buckets, "finance", "helper.py", "def DAG(x):\n    pass\nDAG('not_a_dag')\n")  # safe mode skips it
    put_live(buckets, "finance", "sql/report.sql", "select 1")
    put_live(buckets, "marketing", "etl.py", DAG.format(dag_id="marketing_etl"))

    [finance] = read_live_repos(DAG_BUCKET, "ws", "dep", except_repo="marketing")

    assert sorted(finance.paths) == [".airflowignore", "helper.py", "old/revenue.py", "revenue.py", "sql/report.sql"]
    assert [(f.path, f.dag_ids, f.commit) for f in finance.dag_files] == [("revenue.py", ("finance_revenue",),
                                                                           "c0ffee")]
    problems = live_dag_id_problems([DagFileIds("etl.py", ["finance_revenue"])], finance.dag_files)
    assert problems == ["etl.py: dag_id 'finance_revenue' is already defined by repo 'finance' (commit c0ffee) in "
                        "revenue.py: dag_ids are global in an Airflow deployment, one of the two DAGs would "
                        "disappear: rename it (or remove it there first)"]


def save_plan_with(s3, dag_ids: list[str]) -> RunScope:
    scope = RunScope(workspace="ws", deployment="dep", repo="marketing", execution="exec-1")
    plan = {**scope.to_json(), "prefix": "dags/ws/dep/marketing/", "files": [
        {"source_bucket": "b", "source_key": "k", "etag": '"e"', "size": 1, "path": "etl.py", "kind": "dag",
         "dag_ids": dag_ids}]}
    s3.put_object(Bucket=DAG_BUCKET, Key=plan_key("exec-1"), Body=json.dumps(plan).encode())
    return scope


def test_once_the_lock_is_held_a_dag_id_another_repo_shipped_meanwhile_is_refused(buckets):
    scope = save_plan_with(buckets, ["marketing_etl"])
    put_live(buckets, "marketing", "etl.py", DAG.format(dag_id="marketing_etl"))  # this repo's own: replaced
    assert check_dag_ids_still_free(DAG_BUCKET, scope) == 1

    put_live(buckets, "finance", "copy.py", DAG.format(dag_id="marketing_etl"), commit=None)
    with pytest.raises(DagIdTaken) as raised:
        check_dag_ids_still_free(DAG_BUCKET, scope)
    assert "already defined by repo 'finance' (no commit recorded) in copy.py" in str(raised.value)


def test_a_repo_whose_manifest_holds_its_copies_is_read_from_the_manifest_alone(buckets):
    put_live(buckets, "finance", "revenue.py", DAG.format(dag_id="finance_revenue"))
    put_live(buckets, "finance", "sql/report.sql", "select 1")
    copies = stored_files(DAG_BUCKET, "ws", "dep")["finance"]
    # The manifest names another dag_id than the file: whichever read_live_repos reports says where it looked.
    manifest = RepoManifest(
        workspace="ws", deployment="dep", repo="finance", commit="abc1", execution="exec-0",
        deployed_at="2026-11-29T00:00:00+00:00", deployment_id="d", bundle="main", bundle_version="v1",
        files=[LiveFile(path=path, checksum="md5:x", size=1, stored_etag=etag,
                        dag_ids=["recorded_revenue"] if path == "revenue.py" else [])
               for path, etag in copies.items()],
    )
    buckets.put_object(Bucket=DAG_BUCKET, Key=repo_manifest_key("ws", "dep", "finance"),
                       Body=json.dumps(manifest.to_json()).encode())
    reads: list[str] = []
    buckets.meta.events.register("provide-client-params.s3.GetObject", lambda params, **_: reads.append(params["Key"]))

    [finance] = read_live_repos(DAG_BUCKET, "ws", "dep", except_repo="marketing")

    assert [(f.path, f.dag_ids, f.commit) for f in finance.dag_files] == [("revenue.py", ("recorded_revenue",), "abc1")]
    assert finance.paths == ["revenue.py", "sql/report.sql"]
    assert reads == [repo_manifest_key("ws", "dep", "finance")]

    # A file added behind the manifest: the files are the truth again.
    put_live(buckets, "finance", "extra.py", DAG.format(dag_id="finance_extra"))
    [finance] = read_live_repos(DAG_BUCKET, "ws", "dep", except_repo="marketing")
    assert sorted(f.dag_ids for f in finance.dag_files) == [("finance_extra",), ("finance_revenue",)]
