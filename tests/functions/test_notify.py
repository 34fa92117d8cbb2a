"""Notify: a message a person can act on, published to the failure topic."""

import json

from testkit import REGION

from functions.notify import app
from functions.shared.aws import client
from functions.shared.notification import CAUSE_LIMIT, FailedExecution, failure_notification

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
            "bytes": 10, "dag_count": 1, "dag_ids": ["etl"]}


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

    assert len(notification.subject) <= 100
    assert "\n" not in notification.subject and "\x1b" not in notification.subject
    assert "repo-b -> ws??evil" in notification.subject
    assert "/? at Parse" in notification.message or "? failed at Parse" in notification.message
    assert "... (50 more characters)" in notification.message


def test_handler_publishes_to_the_topic(aws, monkeypatch, lambda_context):
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="failures")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("TOPIC_ARN", topic)

    result = app.handler(event(request("ws", "dep", "repo-a"),
                               {**planned("ws", "dep", "repo-a"),
                                "failure": failure("Deploy", "AstroDeployFailed", "token expired")}),
                         lambda_context)

    assert result["subject"] == "astro-dag-deploy FAILED: repo-a -> ws/dep at Deploy"
    message = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert message["Subject"] == result["subject"] and "Cause: token expired" in message["Message"]
