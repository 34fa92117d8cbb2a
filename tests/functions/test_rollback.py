"""Restore points: after a failure or a stop, the repo prefix is byte-for-byte what it was."""

import json

import pytest
from testkit import DAG_BUCKET, REGION, store_astro_targets

from functions.clear_prefix.clearing import clear_repo_prefix
from functions.recover import app as recover_app
from functions.rollback import app as rollback_app
from functions.snapshot import app as snapshot_app
from functions.recover.recovery import ExecutionEnded, recover_execution
from functions.shared import repo_archive
from functions.shared.repo_archive import (
    ArchiveNotWritten, StaleArchive, listed_objects, matching_archive, write_repo_archive,
)
from functions.shared.restore_point import restore, save_restore_point
from functions.shared.aws import client
from functions.shared.errors import RollbackFailed
from functions.shared.execution_state import RunScope
from functions.shared.locking import acquire, current_holder, lock_key

SCOPE = RunScope(workspace="ws", deployment="dep", repo="repo-a", execution="exec-1")
PREFIX = "dags/ws/dep/repo-a/"
BEFORE = {"etl.py": b"etl v1", "include/helpers.py": b"helpers v1", "sql/q.sql": b"select 1"}


def contents(s3, prefix: str = PREFIX) -> dict[str, tuple[bytes, dict]]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DAG_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            response = s3.get_object(Bucket=DAG_BUCKET, Key=item["Key"])
            found[item["Key"][len(prefix):]] = (response["Body"].read(), response["Metadata"])
    return found


@pytest.fixture
def repo(buckets):
    for path, body in BEFORE.items():
        buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + path, Body=body, Metadata={"commit": "old"})
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-ab/etl.py", Body=b"neighbour")
    return buckets


def half_done_deploy(s3) -> None:
    """What a failure in the middle of Upload leaves: the prefix cleared, some new files copied."""
    clear_repo_prefix(DAG_BUCKET, SCOPE)
    s3.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"etl v2")
    s3.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "new_dag.py", Body=b"new")


def test_restores_exactly_what_was_there(repo):
    before = contents(repo)
    summary = save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)

    result = restore(DAG_BUCKET, SCOPE)

    assert summary.objects == 3 and summary.restore_point == f"s3://{DAG_BUCKET}/restore-points/exec-1.json"
    assert contents(repo) == before
    assert result.to_json() == {"status": "restored", "prefix": PREFIX, "restored": 3, "removed": 1,
                                   "unchanged": 0, "archive": result.archive.to_json()}
    assert contents(repo, "dags/ws/dep/repo-ab/") == {"etl.py": (b"neighbour", {})}


def archived_files(s3) -> dict[str, bytes]:
    """The repo's archive, as a ship would read it: only if it holds exactly the prefix."""
    expected = {entry.relative: entry for entry in listed_objects(DAG_BUCKET, PREFIX)}
    with matching_archive(DAG_BUCKET, "ws", "dep", "repo-a", expected) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_restored_prefix_gets_its_archive_back(repo):
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    # What Upload leaves when it finishes: the archive of the new content.
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")

    result = restore(DAG_BUCKET, SCOPE)

    assert (result.archive.key, result.archive.written, result.archive.files) == ("archives/ws/dep/repo-a.zip",
                                                                                  True, 3)
    assert archived_files(repo) == BEFORE


def test_an_archive_the_restore_cannot_write_leaves_the_restore_standing(repo, monkeypatch):
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    write_repo_archive(DAG_BUCKET, "ws", "dep", "repo-a")
    monkeypatch.setattr(repo_archive, "write_repo_archive", failing_archive_write)

    result = restore(DAG_BUCKET, SCOPE)

    assert result.status == "restored" and contents(repo)["etl.py"][0] == b"etl v1"
    assert not result.archive.written and "injected" in result.archive.error
    # The archive left holds the failed deploy's files: a ship sees it is stale and reads the objects.
    with pytest.raises(StaleArchive, match="new_dag.py"):
        archived_files(repo)


def failing_archive_write(*_):
    raise ArchiveNotWritten("injected")


def test_restoring_twice_gives_the_same_prefix(repo):
    before = contents(repo)
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    restore(DAG_BUCKET, SCOPE)
    assert restore(DAG_BUCKET, SCOPE).removed == 0
    assert contents(repo) == before


def test_an_empty_prefix_is_restored_to_empty(buckets):
    save_restore_point(DAG_BUCKET, SCOPE)
    buckets.put_object(Bucket=DAG_BUCKET, Key=PREFIX + "etl.py", Body=b"new")
    assert restore(DAG_BUCKET, SCOPE).removed == 1
    assert contents(buckets) == {}


def test_without_a_restore_point_nothing_had_changed(repo):
    result = restore(DAG_BUCKET, SCOPE)
    assert result.status == "nothing to restore"
    assert contents(repo)["etl.py"][0] == b"etl v1"


def test_a_restore_that_cannot_finish_fails_loudly(repo, monkeypatch):
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    monkeypatch.setattr(repo, "copy_object", lambda **kwargs: None)
    with pytest.raises(RollbackFailed, match="still differs from its restore point after rollback: .*etl.py"):
        restore(DAG_BUCKET, SCOPE)


def test_step_handlers(repo, monkeypatch, lambda_context):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    state = {**SCOPE.to_json(), "prefix": PREFIX}
    assert snapshot_app.handler(state, lambda_context)["objects"] == 3
    half_done_deploy(repo)
    assert rollback_app.handler(state, lambda_context)["status"] == "restored"
    assert contents(repo)["etl.py"][0] == b"etl v1"


@pytest.fixture
def recovery_env(repo, monkeypatch):
    dynamodb, sns, sqs = client("dynamodb"), client("sns"), client("sqs")
    dynamodb.create_table(TableName="locks", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}])
    topic = sns.create_topic(Name="failures")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    targets = {"ws/dep": {"deploymentId": "d"}, "ws/split": {"deploymentId": "s", "dagBundles": "per-repo"}}
    for name, value in {"DAG_BUCKET": DAG_BUCKET, "LOCK_TABLE": "locks", "TOPIC_ARN": topic}.items():
        monkeypatch.setenv(name, value)
    store_astro_targets(monkeypatch, targets)
    return lambda: json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])


def stopped(status: str = "ABORTED", request: object = None) -> ExecutionEnded:
    request = request or {"astroWorkspace": "ws", "astroDeployment": "dep", "repo": "repo-a", "body": {"dags": []}}
    return ExecutionEnded(executionArn=f"arn:aws:states:{REGION}:123456789012:execution:m:exec-1", name="exec-1",
                          status=status, input=json.dumps(request))


def test_a_stopped_execution_is_rolled_back_unlocked_and_reported(repo, recovery_env):
    before = contents(repo)
    acquire("locks", "ws/dep", "exec-1", 3600, 900)
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)

    result = recover_execution(stopped())

    assert contents(repo) == before
    assert current_holder("locks", "ws/dep") is None and result["lock_released"] is True
    message = recovery_env()
    assert message["Subject"] == "astro-dag-deploy FAILED: repo-a -> ws/dep at execution ABORTED"
    assert "holds exactly what it held before this execution (3 files put back, 1 removed" in message["Message"]


def test_a_stop_in_a_per_repo_deployment_frees_its_bundles_lock_alone(repo, recovery_env):
    acquire("locks", lock_key("ws", "split", "repo-a"), "exec-1", 3600, 900)
    acquire("locks", lock_key("ws", "split", "repo-b"), "exec-b", 3600, 900)
    request = {"astroWorkspace": "ws", "astroDeployment": "split", "repo": "repo-a", "body": {"dags": []}}

    assert recover_execution(stopped(request=request))["lock_released"] is True

    assert current_holder("locks", lock_key("ws", "split", "repo-a")) is None
    assert current_holder("locks", lock_key("ws", "split", "repo-b")) == "exec-b"


def test_a_stop_never_releases_someone_elses_lock(repo, recovery_env):
    acquire("locks", "ws/dep", "exec-other", 3600, 900)
    result = recover_execution(stopped("TIMED_OUT"))
    assert result["lock_released"] is False and current_holder("locks", "ws/dep") == "exec-other"
    assert result["rollback"]["status"] == "nothing to restore"


def test_a_stop_of_a_refused_request_only_reports(repo, recovery_env):
    result = recover_execution(stopped(request={"repo": "../../etc"}))
    assert result["rollback"] is None
    assert "Nothing was changed" in recovery_env()["Message"]


def test_a_failed_rollback_after_a_stop_is_reported_loudly(repo, recovery_env, monkeypatch):
    save_restore_point(DAG_BUCKET, SCOPE)
    half_done_deploy(repo)
    monkeypatch.setattr(repo, "copy_object", lambda **kwargs: None)
    recover_execution(stopped())
    message = recovery_env()
    assert message["Subject"].startswith("ROLLBACK FAILED")
    assert "ROLLBACK FAILED: RollbackFailed" in message["Message"] and "restore-points/exec-1.json" in message["Message"]


def test_recover_handler_reads_the_eventbridge_event(repo, recovery_env, lambda_context):
    event = {"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
             "detail": stopped().to_json()}
    assert recover_app.handler(event, lambda_context)["rollback"]["status"] == "nothing to restore"
