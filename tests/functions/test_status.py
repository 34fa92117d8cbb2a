"""Status: an execution's status, the state it is in or failed at, and the deployed version, read from Step
Functions (moto running executions of a small machine shaped like the pipeline: its failure path records
$.failure as the real one does)."""

import json
import time

import pytest
from moto.core.config import default_user_config
from testkit import DAG_BUCKET, REGION

from functions.shared.aws import client
from functions.shared.execution_names import execution_name
from functions.shared.execution_state import RunScope
from functions.deploy.ship_record import begin_ship, record_ship
from functions.shared.plan_store import Plan, PlannedFile, save_plan
from functions.status import app
from functions.status.describing import (
    ExecutionNotFound,
    InvalidExecutionName,
    describe_deployment,
    execution_arn,
)

PARSE_CAUSE = json.dumps({
    "errorType": "InvalidRequest",
    "errorMessage": "1 problem in the request: broken_dag.py: does not compile: invalid syntax (line 3)",
    "stackTrace": ["  File \"/var/task/parse/app.py\", line 27, in handler"],
})
VERSION = "2025-01-02T03:04:05.000000Z"
# Parse fails (InvalidRequest) when the input says so, WaitForLock waits as long as the input says.
DEFINITION = {
    "StartAt": "Parse",
    "States": {
        "Parse": {
            "Type": "Parallel",
            "Branches": [{
                "StartAt": "Checking",
                "States": {
                    "Checking": {"Type": "Choice", "Choices": [{"Variable": "$.broken", "BooleanEquals": True,
                                                                 "Next": "Refusing"}], "Default": "Accepting"},
                    "Refusing": {"Type": "Fail", "Error": "InvalidRequest", "Cause": PARSE_CAUSE},
                    "Accepting": {"Type": "Pass", "End": True},
                },
            }],
            "ResultPath": None,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Parse failed"}],
            "Next": "WaitForLock",
        },
        "WaitForLock": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Defer ship?"},
        # The input's `deferred`: a later ship carries the change, as in a burst.
        "Defer ship?": {"Type": "Choice", "Choices": [{"Variable": "$.deferred", "BooleanEquals": True,
                                                       "Next": "DeferShip"}], "Default": "Deploy"},
        "DeferShip": {"Type": "Pass", "Result": {"shipped": True, "reason": "carried", "shipped_by": "team_h-1",
                                                 "deployment_id": "dep-1", "bundle": "main", "version": "v-carrier"},
                      "ResultPath": "$.carried", "Next": "Deployed by another ship"},
        "Deployed by another ship": {"Type": "Succeed"},
        "Deploy": {"Type": "Pass", "Result": {"deployment_id": "dep-1", "version": VERSION, "files": 1, "bytes": 10,
                                              "repos": ["marketing_etl"]},
                   "ResultPath": "$.deploy", "Next": "Deployed"},
        "Deployed": {"Type": "Succeed"},
        "Parse failed": {"Type": "Pass", "Parameters": {"state": "Parse", "error.$": "$.failure.Error",
                                                        "cause.$": "$.failure.Cause"},
                         "ResultPath": "$.failure", "Next": "Notify"},
        "Notify": {"Type": "Pass", "Result": {"subject": "sent"}, "ResultPath": "$.notification", "Next": "Failed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"},
    },
}
MACHINE_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:AstroDagDeploy"
SUCCESS_PATH = ["Parse", "Checking", "Accepting", "WaitForLock", "Defer ship?", "Deploy", "Deployed"]


@pytest.fixture
def machine(aws, monkeypatch) -> str:
    # moto runs executions only when asked to.
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    role = client("iam").create_role(RoleName="machine", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    arn = client("stepfunctions").create_state_machine(
        name="AstroDagDeploy", definition=json.dumps(DEFINITION), roleArn=role
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    return arn


def start(machine: str, repo: str, **execution_input) -> str:
    name = execution_name(repo, "0123456789abcdef", f"test{time.monotonic_ns()}")
    client("stepfunctions").start_execution(
        stateMachineArn=machine, name=name,
        input=json.dumps({"broken": False, "wait": 0, "deferred": False, **execution_input})
    )
    return name


def finished(machine: str, name: str) -> None:
    deadline = time.monotonic() + 20
    while describe_deployment(machine, name).status == "RUNNING":
        assert time.monotonic() < deadline, f"{name} still RUNNING"
        time.sleep(0.05)


def entered(machine: str, name: str, state: str) -> None:
    deadline = time.monotonic() + 20
    while state not in describe_deployment(machine, name).states:
        assert time.monotonic() < deadline, f"{name} never entered {state}"
        time.sleep(0.05)


def proxy_event(path: str) -> dict:
    return {
        "resource": "/deployments/{executionName}", "path": path, "httpMethod": "GET",
        "headers": {"Accept": "application/json"}, "multiValueHeaders": {}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": {"executionName": path.rsplit("/", 1)[-1]},
        "stageVariables": None, "body": None, "isBase64Encoded": False,
        "requestContext": {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "stage": "prod",
                           "resourcePath": "/deployments/{executionName}", "httpMethod": "GET", "path": f"/prod{path}"},
    }


def test_a_success_reports_the_states_the_dates_and_the_deployed_version(machine):
    name = start(machine, "marketing_etl")
    finished(machine, name)

    status = describe_deployment(machine, name)

    assert (status.status, status.state, status.error, status.cause) == ("SUCCEEDED", "Deployed", None, None)
    assert status.states == SUCCESS_PATH
    assert (status.bundle, status.version, status.shipped_by) == ("main", VERSION, None)
    assert status.start_date <= status.stop_date and status.stop_date.startswith("20")
    arn = execution_arn(machine, name)
    assert status.console_url.endswith(f"#/v2/executions/details/{arn}") and f"region={REGION}" in status.console_url


def test_an_execution_a_later_ship_carried_reports_that_ships_version_and_execution(machine):
    name = start(machine, "marketing_etl", deferred=True)
    finished(machine, name)

    status = describe_deployment(machine, name)

    assert (status.status, status.state) == ("SUCCEEDED", "Deployed by another ship")
    assert (status.bundle, status.version, status.shipped_by) == ("main", "v-carrier", "team_h-1")


def test_a_failure_reports_the_failed_task_its_error_and_the_readable_cause(machine):
    name = start(machine, "marketing_etl", broken=True)
    finished(machine, name)

    status = describe_deployment(machine, name)

    # Failed is the last state entered; Parse is where it went wrong.
    assert (status.status, status.state, status.error) == ("FAILED", "Parse", "InvalidRequest")
    assert status.cause == "1 problem in the request: broken_dag.py: does not compile: invalid syntax (line 3)"
    assert status.states[-3:] == ["Parse failed", "Notify", "Failed"]
    assert status.version is None and status.stop_date


def test_a_running_execution_reports_the_state_it_is_in_then_how_it_was_stopped(machine):
    name = start(machine, "finance_reports", wait=60)
    entered(machine, name, "WaitForLock")

    running = describe_deployment(machine, name)
    client("stepfunctions").stop_execution(executionArn=execution_arn(machine, name))
    finished(machine, name)
    stopped = describe_deployment(machine, name)

    assert (running.status, running.state, running.stop_date, running.version) == ("RUNNING", "WaitForLock", None, None)
    assert (stopped.status, stopped.state, stopped.version) == ("ABORTED", "WaitForLock", None)
    assert stopped.stop_date


def test_the_execution_arn_is_built_from_the_machine_arn():
    assert execution_arn(MACHINE_ARN, "repo-a-1") == (
        f"arn:aws:states:{REGION}:123456789012:execution:AstroDagDeploy:repo-a-1"
    )
    with pytest.raises(ValueError):
        execution_arn("arn:aws:states:eu-west-1:123456789012:activity:Something", "repo-a-1")


@pytest.mark.parametrize("name", ["", "x" * 81, "two words", "a/b", "a:b", "a$b", "tab\there", "bell\x07", "c1\x85"])
def test_names_step_functions_refuses_are_invalid_before_anything_is_asked(name):
    with pytest.raises(InvalidExecutionName):
        describe_deployment(MACHINE_ARN, name)


def test_an_unknown_name_is_not_found(machine):
    with pytest.raises(ExecutionNotFound, match="no execution is named repo-a-0123"):
        describe_deployment(machine, "repo-a-0123")


def test_the_handler_answers_200_with_the_status_400_for_junk_and_404_for_unknown(machine, lambda_context):
    name = start(machine, "marketing_etl")
    finished(machine, name)

    found = app.handler(proxy_event(f"/deployments/{name}"), lambda_context)
    junk = app.handler(proxy_event("/deployments/" + "x" * 81), lambda_context)
    unknown = app.handler(proxy_event("/deployments/marketing_etl-nothing"), lambda_context)

    assert found["statusCode"] == 200
    body = json.loads(found["body"])
    assert set(body) == {"name", "status", "state", "error", "cause", "startDate", "stopDate", "bundle", "version",
                         "consoleUrl", "states", "live", "unchanged", "dryRun", "shippedBy"}
    assert (body["name"], body["status"], body["version"]) == (name, "SUCCEEDED", VERSION)
    assert junk["statusCode"] == 400 and "1 to 80 characters" in json.loads(junk["body"])["message"]
    assert unknown["statusCode"] == 404
    assert json.loads(unknown["body"])["message"] == "no execution is named marketing_etl-nothing"


def test_execution_names_follow_the_api_rule():
    assert execution_name("marketing_etl", "0123456789abcdef", "req") == "marketing_etl-01234567-req"
    assert execution_name("finance.reports", None, "req") == "finance-reports-req"
    assert execution_name("r" * 64, "ABCDEF01", "x" * 36) == "r" * 30 + "-ABCDEF01-" + "x" * 36
    with pytest.raises(ValueError, match="1 to 80 characters"):
        execution_name("repo", "abcd", "x" * 80)


def targets_event(workspace: str, deployment: str) -> dict:
    path = f"/targets/{workspace}/{deployment}"
    return {
        **proxy_event(path), "resource": "/targets/{workspace}/{deployment}",
        "pathParameters": {"workspace": workspace, "deployment": deployment},
        "requestContext": {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "stage": "prod",
                           "resourcePath": "/targets/{workspace}/{deployment}", "httpMethod": "GET",
                           "path": f"/prod{path}"},
    }


def shipped(repo: str, execution: str, files: dict[str, str], bundle: str = "main", confirm: bool = True) -> None:
    """What Deploy records for a ship of `repo` (functions/shared/manifest.py)."""
    for path, body in files.items():
        client("s3").put_object(Bucket=DAG_BUCKET, Key=f"dags/ws/dep/{repo}/{path}", Body=body.encode())
    save_plan(DAG_BUCKET, Plan(
        workspace="ws", deployment="dep", repo=repo, commit="abcd1234", execution=execution, bundle=bundle,
        prefix=f"dags/ws/dep/{repo}/",
        files=[PlannedFile(source_bucket="s", source_key=path, etag='"00ff"', size=len(body), path=path,
                           kind="dag" if path.endswith(".py") else "dependency",
                           dag_ids=[path.removesuffix(".py")] if path.endswith(".py") else [])
               for path, body in files.items()],
    ))
    pending = begin_ship(DAG_BUCKET, RunScope(workspace="ws", deployment="dep", repo=repo, commit="abcd1234",
                                              execution=execution, bundle=bundle), "astro-dep")
    if confirm:
        assert record_ship(DAG_BUCKET, pending, f"version-of-{execution}") is None


def test_targets_tell_each_repo_s_commit_dags_bundle_and_whether_the_last_ship_holds_them(
    buckets, monkeypatch, lambda_context
):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    shipped("repo-a", "exec-a", {"etl.py": "a", "q.sql": "b"})
    shipped("repo-b", "exec-b", {"report.py": "c"})

    answer = app.handler(targets_event("ws", "dep"), lambda_context)

    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert (body["workspace"], body["deployment"], body["deploymentId"]) == ("ws", "dep", "astro-dep")
    repos = {repo["repo"]: repo for repo in body["repos"]}
    assert repos["repo-a"]["dags"] == [{"dagId": "etl", "path": "etl.py"}]
    assert (repos["repo-a"]["commit"], repos["repo-a"]["files"], repos["repo-a"]["bundleVersion"]) == (
        "abcd1234", 2, "version-of-exec-a")
    # repo-b's ship carried repo-a's files unchanged: both are in the main bundle's last ship.
    assert [repo["inLastShip"] for repo in body["repos"]] == [True, True]
    [bundle] = body["bundles"]
    assert (bundle["bundle"], bundle["state"], bundle["execution"], bundle["repos"]) == (
        "main", "shipped", "exec-b", ["repo-a", "repo-b"])

    # A ship that never confirmed: Astro may hold it, no repo counts as in the last ship.
    shipped("repo-b", "exec-b2", {"report.py": "changed"}, confirm=False)
    body = json.loads(app.handler(targets_event("ws", "dep"), lambda_context)["body"])
    assert [repo["inLastShip"] for repo in body["repos"]] == [False, False]
    assert body["bundles"][0]["state"] == "shipping"


def test_targets_answer_400_for_junk_and_404_where_nothing_was_deployed(buckets, monkeypatch, lambda_context):
    monkeypatch.setenv("DAG_BUCKET", DAG_BUCKET)
    junk = app.handler(targets_event("ws", ".."), lambda_context)
    nothing = app.handler(targets_event("ws", "dep"), lambda_context)

    assert junk["statusCode"] == 400 and "deployment '..' is not a valid name" in json.loads(junk["body"])["message"]
    assert nothing["statusCode"] == 404
    assert json.loads(nothing["body"])["message"] == "nothing has been deployed to ws/dep by astro-dag-deploy"
