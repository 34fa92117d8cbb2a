"""Notify: a message a person can act on, published to the failure topic."""

import json
import os
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from testkit import REGION

from functions.notify import app
from functions.shared.aws import client
from functions.shared.errors import InvalidRequest
from functions.shared.execution_ends import NOTIFIED_RECORD_LIFETIME
from functions.shared.notification import (
    CAUSE_LIMIT, NOTIFIED_EXPIRY_ATTRIBUTE, NOTIFIED_KEY_ATTRIBUTE, FailedExecution, failure_notification,
    with_parse_report,
)
from functions.shared.plan_store import ParseReport, save_parse_report
from functions.shared.paths import SEGMENT_RE

EXECUTION_ARN = f"arn:aws:states:{REGION}:123456789012:execution:AstroDagDeploy:repo-a-1234"


def event(request: dict, state: dict) -> dict:
    """Notify's input: the execution's input (the request) and its state."""
    return {"execution": "repo-a-1234", "execution_arn": EXECUTION_ARN, "request": request, "state": state}


def request(workspace: object, deployment: object, repo: object, **fields: object) -> dict:
    return {"astroWorkspace": workspace, "astroDeployment": deployment, "repo": repo, "body": {}, **fields}


def planned(workspace: str, deployment: str, repo: str) -> dict:
    """Parse's summary, the state from Parse on."""
    return {"workspace": workspace, "deployment": deployment, "repo": repo, "execution": "repo-a-1234",
            "prefix": f"dags/{workspace}/{deployment}/{repo}/", "plan": "s3://b/plans/repo-a-1234.json", "files": 1,
            "bytes": 10, "dag_count": 1, "dag_ids": ["etl"], "lock_key": f"{workspace}/{deployment}"}


def failure(state: str, error: str, cause: str) -> dict:
    return {"state": state, "error": error, "cause": cause}


def test_names_repo_deployment_state_error_cause_and_links_the_execution():
    lambda_cause = json.dumps({"errorMessage": "2 of 5 files could not be copied", "errorType": "UploadFailed",
                               "stackTrace": ["..."]})
    notification = failure_notification(FailedExecution.from_json(event(
        request("analytics", "production", "repo-a", commit="0123456789abcdef"),
        {**planned("analytics", "production", "repo-a"), "commit": "0123456789abcdef",
         "failure": failure("Upload", "UploadFailed", lambda_cause)},
    )))

    assert notification.subject == "astro-dag-deploy FAILED: repo-a -> analytics/production at Upload"
    assert "Deploying repo-a (commit 0123456789ab) to analytics/production failed at Upload." in notification.message
    assert "Error: UploadFailed" in notification.message
    assert "Cause: 2 of 5 files could not be copied" in notification.message
    assert "stackTrace" not in notification.message
    assert (f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}#/v2/executions/details/"
            f"{EXECUTION_ARN}") in notification.message


def test_a_refused_request_is_described_from_its_raw_fields_without_echoing_junk():
    refused = request("ws\n\x1bevil" + "x" * 500, 5, "repo-b")
    notification = failure_notification(FailedExecution.from_json(event(
        refused, {**refused, "failure": failure("Parse", "InvalidRequest", "c" * (CAUSE_LIMIT + 50))},
    )))

    assert_sns_accepts(notification.subject)
    assert "repo-b -> ws??evil" in notification.subject
    assert "/? at Parse" in notification.message or "? failed at Parse" in notification.message
    assert "... (50 more characters)" in notification.message


@pytest.fixture
def notified_table(aws, monkeypatch) -> str:
    """Notify's record of the executions it notified, keyed and expiring as the stack's table (cdk/notifications.py)."""
    client("dynamodb").create_table(
        TableName="notified", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": NOTIFIED_KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": NOTIFIED_KEY_ATTRIBUTE, "AttributeType": "S"}])
    monkeypatch.setenv("NOTIFIED_TABLE", "notified")
    return "notified"


@pytest.fixture
def inbox(aws, notified_table, monkeypatch) -> Callable[[], list[dict]]:
    """The failure topic, subscribed by a queue; returns a reader of the messages published (their SNS envelopes)."""
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="failures")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("TOPIC_ARN", topic)
    monkeypatch.setenv("DAG_BUCKET", "dags")
    return lambda: [json.loads(message["Body"]) for message in
                    sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]


def test_handler_publishes_to_the_topic(inbox, lambda_context):
    result = app.handler(event(request("ws", "dep", "repo-a"),
                               {**planned("ws", "dep", "repo-a"),
                                "failure": failure("Deploy", "AstroDeployFailed", "token expired")}),
                         lambda_context)

    assert result["subject"] == "astro-dag-deploy FAILED: repo-a -> ws/dep at Deploy"
    [message] = inbox()
    assert message["Subject"] == result["subject"] and "Cause: token expired" in message["Message"]


def test_an_execution_is_notified_once_however_often_notify_runs_for_it(inbox, lambda_context):
    # The failure path's Notify ran on after a stop; the recovery then notifies the same execution.
    planned_state = planned("ws", "dep", "repo-a")
    first = app.handler(event(request("ws", "dep", "repo-a"),
                              {**planned_state, "failure": failure("Deploy", "AstroDeployFailed", "token expired")}),
                        lambda_context)
    again = app.handler(event(request("ws", "dep", "repo-a"),
                              {**planned_state, "failure": failure("execution ABORTED", "States.ABORTED", "stopped")}),
                        lambda_context)
    other = app.handler({**event(request("ws", "dep", "repo-a"), {**planned_state, "failure": failure(
        "Upload", "UploadFailed", "denied")}), "execution_arn": EXECUTION_ARN + "-other"}, lambda_context)

    assert again == first and other != first
    assert [message["Subject"] for message in inbox()] == [first["subject"], other["subject"]]
    records = client("dynamodb").scan(TableName="notified")["Items"]
    assert len(records) == 2
    # Kept past the latest recovery that may notify an execution again (the sweep's lookback).
    assert all(int(record[NOTIFIED_EXPIRY_ATTRIBUTE]["N"]) - time.time() > NOTIFIED_RECORD_LIFETIME.total_seconds() - 60
               for record in records)


def test_a_notification_that_failed_to_publish_is_sent_by_the_next_notify(inbox, lambda_context, monkeypatch):
    failed = event(request("ws", "dep", "repo-a"),
                   {**planned("ws", "dep", "repo-a"), "failure": failure("Deploy", "AstroDeployFailed", "x")})
    topic = os.environ["TOPIC_ARN"]
    monkeypatch.setenv("TOPIC_ARN", topic + "-missing")
    with pytest.raises(ClientError, match="NotFound"):
        app.handler(failed, lambda_context)
    monkeypatch.setenv("TOPIC_ARN", topic)

    result = app.handler(failed, lambda_context)

    assert [message["Subject"] for message in inbox()] == [result["subject"]]


# Every way an execution fails: a step's Catch, Recover for an execution that ended without reaching it.
FAILED_STATES = ["Parse", "AcquireLock", "Snapshot", "ClearPrefix", "Upload", "Deploy", "execution ABORTED",
                 "execution TIMED_OUT", "execution FAILED"]
SEGMENTS = st.from_regex(SEGMENT_RE, fullmatch=True)


def assert_sns_accepts(subject: str) -> None:
    """SNS: ASCII text beginning with a letter, number or punctuation mark, without line breaks or control
    characters, less than 100 characters long."""
    assert len(subject) < 100
    assert subject.isascii() and subject.isprintable()
    assert subject[0].isalpha()


@given(workspace=SEGMENTS, deployment=SEGMENTS, repo=SEGMENTS, state=st.sampled_from(FAILED_STATES),
       rollback_failed=st.booleans(), reship_failed=st.booleans())
def test_every_subject_for_names_the_request_allows_is_one_sns_accepts(workspace, deployment, repo, state,
                                                                       rollback_failed, reship_failed):
    rollback = {"status": "FAILED", "error": "AccessDenied", "cause": "no"} if rollback_failed else None
    # A recovery's re-ship of the restored bundle that failed.
    reship_error = {"Error": "AstroUnavailable", "Cause": "503"} if reship_failed else None
    subject = failure_notification(FailedExecution.from_json(event(
        request(workspace, deployment, repo),
        {**planned(workspace, deployment, repo), "failure": failure(state, "States.TaskFailed", "x"),
         "rollback": rollback, "reship_error": reship_error},
    ))).subject

    assert_sns_accepts(subject)
    # The outcome and the failed state survive shortening; shortened names say so.
    assert subject.startswith(("RESHIP FAILED " if reship_failed else "")
                              + ("ROLLBACK FAILED " if rollback_failed else "") + "astro-dag-deploy FAILED: ")
    assert subject.endswith(f" at {state}")
    full = f"{repo} -> {workspace}/{deployment}"
    assert full in subject or "... at " in subject


@given(names=st.lists(st.text(), min_size=3, max_size=3), state=st.text())
def test_a_subject_from_any_refused_request_is_one_sns_accepts(names, state):
    workspace, deployment, repo = names
    refused = request(workspace, deployment, repo)
    subject = failure_notification(FailedExecution.from_json(event(
        refused, {**refused, "failure": failure(state or "Parse", "InvalidRequest", "bad")},
    ))).subject

    assert_sns_accepts(subject)
    assert subject.startswith("astro-dag-deploy FAILED: ")


def test_long_names_are_shortened_visibly_to_the_longest_subject_sns_takes():
    long_name = "r" * 64
    subject = failure_notification(FailedExecution.from_json(event(
        request(long_name, long_name, long_name),
        {**planned(long_name, long_name, long_name), "failure": failure("Deploy", "AstroDeployFailed", "x"),
         "rollback": {"status": "FAILED", "error": "AccessDenied"}},
    ))).subject

    assert len(subject) == 99
    assert subject == f"ROLLBACK FAILED astro-dag-deploy FAILED: {'r' * 45}... at Deploy"


def refused_parse_state() -> dict:
    """The state after Parse refused a request: the failure alone (the request stays out of it)."""
    cause = json.dumps({"errorType": "InvalidRequest", "errorMessage": "37 problems in the request (full report: "
                        "s3://dags/plans/repo-a-1234.report.json): the first 20: ..."})
    return {"failure": failure("Parse", "InvalidRequest", cause)}


def test_after_parse_refused_a_request_the_names_and_the_report_come_from_the_report(inbox, lambda_context):
    client("s3").create_bucket(Bucket="dags", CreateBucketConfiguration={"LocationConstraint": REGION})
    save_parse_report("dags", ParseReport.of("repo-a-1234", request("ws", "dep", "repo-a", commit="abcdef12"),
                                             InvalidRequest([f"problem {number}" for number in range(37)])))

    result = app.handler({"execution": "repo-a-1234", "execution_arn": EXECUTION_ARN, "state": refused_parse_state()},
                         lambda_context)

    assert result["subject"] == "astro-dag-deploy FAILED: repo-a -> ws/dep at Parse"
    [envelope] = inbox()
    message = envelope["Message"]
    assert "Deploying repo-a (commit abcdef12) to ws/dep failed at Parse." in message
    assert "Every problem found: s3://dags/plans/repo-a-1234.report.json" in message


def test_without_a_report_a_parse_failure_is_still_notified_with_what_is_known(aws):
    client("s3").create_bucket(Bucket="dags", CreateBucketConfiguration={"LocationConstraint": REGION})
    failed = with_parse_report(FailedExecution.from_json(
        {"execution": "repo-a-1234", "execution_arn": EXECUTION_ARN, "state": refused_parse_state()}), "dags")
    notification = failure_notification(failed)
    assert notification.subject == "astro-dag-deploy FAILED: unknown repo -> ?/? at Parse"
    assert "Every problem found" not in notification.message


def test_the_message_stays_bounded_whatever_the_cause():
    huge = json.dumps({"errorMessage": "é" * 100_000, "stackTrace": ["x"] * 10_000})
    notification = failure_notification(FailedExecution.from_json(event(
        request("ws", "dep", "repo-a"),
        {**planned("ws", "dep", "repo-a"), "failure": failure("Deploy", "AstroDeployFailed", huge)},
    )))
    # SNS takes 256 KB; the message stays far below it.
    assert len(notification.message.encode()) < 32_768


def test_a_recovery_says_whether_the_restored_bundle_was_shipped_again():
    state = {**planned("ws", "dep", "repo-a"), "failure": failure("execution ABORTED", "States.ABORTED", "stopped"),
             "rollback": {"status": "restored", "prefix": "dags/ws/dep/repo-a/", "restored": 2, "removed": 1}}
    shipped = {"deployment_id": "dep-id", "bundle": "main", "version": "v9", "files": 3, "bytes": 9,
               "repos": ["repo-a"]}
    reshipped = failure_notification(FailedExecution.from_json(event(
        request("ws", "dep", "repo-a"), {**state, "deploy": shipped})))
    failed = failure_notification(FailedExecution.from_json(event(
        request("ws", "dep", "repo-a"), {**state, "reship_error": {"Error": "AstroUnavailable", "Cause": "503"}})))

    assert "Re-shipped:" in reshipped.message and "Dag bundle main, version v9" in reshipped.message
    assert not reshipped.subject.startswith("RESHIP FAILED")
    assert failed.subject.startswith("RESHIP FAILED ")
    assert "RESHIP FAILED: AstroUnavailable: 503" in failed.message and "re-run the last deploy" in failed.message


def test_a_recovery_of_an_execution_that_deferred_its_ship_says_nothing_was_put_back_and_why():
    state = {**planned("ws", "dep", "repo-a"), "failure": failure("execution ABORTED", "States.ABORTED", "stopped"),
             "rollback": {"status": "deferred", "prefix": "dags/ws/dep/repo-a/"}}
    notification = failure_notification(FailedExecution.from_json(event(request("ws", "dep", "repo-a"), state)))

    assert "Rollback: not done: this execution had left its ship to a later one" in notification.message
    assert "dags/ws/dep/repo-a/ as it is" in notification.message and "ROLLBACK FAILED" not in notification.subject
