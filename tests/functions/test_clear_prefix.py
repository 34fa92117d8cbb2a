"""ClearPrefix: exactly the repo's prefix is emptied, however many objects it holds."""

from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from testkit import DAG_BUCKET, emitted_metrics

from functions.clear_prefix import app
from functions.clear_prefix.clearing import DELETE_BATCH, clear_repo_prefix
from functions.shared.errors import ClearPrefixFailed
from functions.shared.execution_state import RunScope

SCOPE = RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1")


def keys(s3) -> list[str]:
    paginator = s3.get_paginator("list_objects_v2")
    return sorted(item["Key"] for page in paginator.paginate(Bucket=DAG_BUCKET) for item in page.get("Contents", []))


def test_clears_only_the_repo_prefix(buckets):
    for key in (
        "dags/ws/dep/repo-a/etl.py",
        "dags/ws/dep/repo-a/include/helpers.py",
        "dags/ws/dep/repo-ab/etl.py",
        "dags/ws/dep/repo-b/etl.py",
        "dags/ws/dep2/repo-a/etl.py",
        "dags/ws2/dep/repo-a/etl.py",
        "plans/exec-1.json",
    ):
        buckets.put_object(Bucket=DAG_BUCKET, Key=key, Body=b"x")

    result = clear_repo_prefix(DAG_BUCKET, SCOPE)

    assert result.deleted == 2 and result.prefix == "dags/ws/dep/repo-a/"
    assert keys(buckets) == [
        "dags/ws/dep/repo-ab/etl.py",
        "dags/ws/dep/repo-b/etl.py",
        "dags/ws/dep2/repo-a/etl.py",
        "dags/ws2/dep/repo-a/etl.py",
        "plans/exec-1.json",
    ]


def test_clears_more_than_one_delete_batch(buckets):
    for number in range(2345):
        buckets.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/repo-a/f{number:05}.py", Body=b"")
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/keep.py", Body=b"")

    assert clear_repo_prefix(DAG_BUCKET, SCOPE).deleted == 2345
    assert keys(buckets) == ["dags/ws/dep/repo-b/keep.py"]


def test_the_repo_s_archive_goes_first_and_no_other(buckets):
    # It no longer holds the prefix: the next ship would download it only to find it stale.
    archives = ["archives/ws/dep/repo-a.zip", "archives/ws/dep/repo-ab.zip", "archives/ws/dep/repo-b.zip",
                "archives/ws/dep2/repo-a.zip"]
    for key in archives:
        buckets.put_object(Bucket=DAG_BUCKET, Key=key, Body=b"PK")

    result = clear_repo_prefix(DAG_BUCKET, SCOPE)

    assert (result.archive, result.archive_left) == ("archives/ws/dep/repo-a.zip", None)
    assert keys(buckets) == archives[1:]


def test_the_archive_rides_in_a_batch_with_room_else_goes_alone(buckets):
    calls = []
    buckets.meta.events.register("provide-client-params.s3.DeleteObjects",
                                 lambda params, **_: calls.append(len(params["Delete"]["Objects"])))
    for number in range(DELETE_BATCH):
        buckets.put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/repo-a/f{number:05}.py", Body=b"")
    buckets.put_object(Bucket=DAG_BUCKET, Key="archives/ws/dep/repo-a.zip", Body=b"PK")

    clear_repo_prefix(DAG_BUCKET, SCOPE)  # a full batch: the archive alone after it
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/etl.py", Body=b"")
    clear_repo_prefix(DAG_BUCKET, SCOPE)  # one key: the archive in its batch

    assert calls == [DELETE_BATCH, 1, 2]
    assert keys(buckets) == []


def refuse_to_delete(buckets, monkeypatch, key: str) -> None:
    """DeleteObjects deletes what it is asked, then says it refused `key` (as a policy denying it would)."""
    original = buckets.delete_objects

    def delete_with_a_refusal(**kwargs):
        original(**kwargs)
        return {"Errors": [{"Key": key, "Code": "AccessDenied", "Message": "denied"}]}

    monkeypatch.setattr(buckets, "delete_objects", delete_with_a_refusal)


def test_an_archive_that_cannot_be_removed_is_left_and_the_prefix_cleared_all_the_same(buckets, monkeypatch):
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/etl.py", Body=b"")
    refuse_to_delete(buckets, monkeypatch, "archives/ws/dep/repo-a.zip")
    result = clear_repo_prefix(DAG_BUCKET, SCOPE)

    assert result.deleted == 1 and result.archive_left == "AccessDenied denied: the next ship finds it stale"
    assert keys(buckets) == []


def test_an_empty_prefix_is_fine(buckets):
    assert clear_repo_prefix(DAG_BUCKET, SCOPE).deleted == 0


def test_old_versions_stay_recoverable(buckets):
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/etl.py", Body=b"v1")
    clear_repo_prefix(DAG_BUCKET, SCOPE)
    versions = buckets.list_object_versions(Bucket=DAG_BUCKET, Prefix="dags/ws/dep/repo-a/")
    assert len(versions["Versions"]) == 1 and len(versions["DeleteMarkers"]) == 1


def test_per_key_errors_fail_loudly(buckets, monkeypatch):
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/etl.py", Body=b"")
    refuse_to_delete(buckets, monkeypatch, "dags/ws/dep/repo-a/etl.py")
    with pytest.raises(ClearPrefixFailed, match="1 objects under dags/ws/dep/repo-a/ could not be deleted: "
                                                 "dags/ws/dep/repo-a/etl.py: AccessDenied denied"):
        clear_repo_prefix(DAG_BUCKET, SCOPE)


def test_a_missing_bucket_is_an_error(aws):
    with pytest.raises(ClientError):
        clear_repo_prefix("no-such-bucket", SCOPE)


def test_names_that_would_escape_are_refused_even_past_parse(buckets):
    with pytest.raises(ValueError):
        # A scope that skipped RunScope's own checks.
        clear_repo_prefix(DAG_BUCKET, SimpleNamespace(workspace="ws", deployment="..", repo="x", execution="e"))


def test_handler(buckets, monkeypatch, lambda_context, capsys):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/etl.py", Body=b"")
    state = {**SCOPE.to_json(), "prefix": "ignored/", "files": 3, "plan": "s3://x/y"}

    assert app.handler(state, lambda_context) == {"prefix": "dags/ws/dep/repo-a/", "deleted": 1,
                                                  "archive": "archives/ws/dep/repo-a.zip", "archive_left": None}
    metrics = emitted_metrics(capsys.readouterr().out, repo="repo-a", deployment="dep")
    assert metrics["clear_prefix.success"] == 1 and metrics["clear_prefix.deleted"] == 1
