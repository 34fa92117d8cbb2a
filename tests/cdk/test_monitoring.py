"""The dashboard operators open, and the alarms that notify the failure topic."""

import json
import re
from pathlib import Path

import pytest

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
STEP_SCHEMA = "{AstroDagDeploy,workspace,deployment,repo}"
EXECUTION_METRICS = {
    "ExecutionsStarted",
    "ExecutionsSucceeded",
    "ExecutionsFailed",
    "ExecutionsTimedOut",
    "ExecutionsAborted",
    "ExecutionTime",
}
API_METRICS = {"Count", "4XXError", "5XXError", "Latency"}


def published_steps() -> set[str]:
    """The step names the functions hand to shared.observability.step_metrics."""
    return {
        step
        for source in FUNCTIONS_DIR.glob("*/app.py")
        for step in re.findall(r'step_metrics\(\s*"(\w+)"', source.read_text())
    }


def dashboard(synthesized) -> tuple[str, dict]:
    dashboard_id, resource = synthesized.only("AWS::CloudWatch::Dashboard")
    return dashboard_id, json.loads(synthesized.render(resource["Properties"]["DashboardBody"]))


def graphed(body: dict) -> list[list]:
    return [line for widget in body["widgets"] for line in widget["properties"].get("metrics", [])]


def alarms(synthesized) -> dict[str, dict]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values()
    }


@pytest.fixture(scope="module")
def body(synthesized) -> dict:
    return dashboard(synthesized)[1]


@pytest.fixture(scope="module")
def searches(body) -> list[str]:
    return [line[0]["expression"] for line in graphed(body) if isinstance(line[0], dict)]


def test_the_dashboard_is_named_after_the_stack_and_its_url_is_an_output(synthesized):
    dashboard_id, _ = dashboard(synthesized)
    name = synthesized.context["stackName"]
    assert synthesized.properties(dashboard_id)["DashboardName"] == name
    assert synthesized.output_value("DashboardUrl").endswith(f"#dashboards/dashboard/{name}")


def test_executions_are_graphed_started_succeeded_failed_timed_out_aborted_and_their_duration(synthesized, body):
    machine = f"<{synthesized.output_ref('StateMachineArn')}>"
    lines = [line for line in graphed(body) if line[0] == "AWS/States"]
    assert {line[1] for line in lines} == EXECUTION_METRICS
    assert all(line[2:4] == ["StateMachineArn", machine] for line in lines)


def test_the_api_requests_errors_and_latency_are_graphed(synthesized, body):
    lines = [line for line in graphed(body) if line[0] == "AWS/ApiGateway"]
    assert {line[1] for line in lines} == API_METRICS
    assert all(line[2:4] == ["ApiName", synthesized.context["stackName"]] for line in lines)


def test_every_step_metric_is_searched_by_workspace_deployment_and_repo(searches):
    steps = published_steps()
    assert {"parse", "lock", "snapshot", "clear_prefix", "upload", "deploy", "rollback", "notify"} <= steps
    for step in steps:
        for metric, statistic in ((f"{step}.success", "Average"), (f"{step}.time", "Maximum")):
            assert f"SEARCH('{STEP_SCHEMA} MetricName=\"{metric}\"', '{statistic}', 300)" in searches, metric


def test_the_lock_wait_is_graphed(searches):
    assert f"SEARCH('{STEP_SCHEMA} MetricName=\"lock.wait\"', 'Maximum', 300)" in searches


def test_every_search_line_is_labelled_with_its_deployment(body):
    labels = {line[0]["label"] for line in graphed(body) if isinstance(line[0], dict)}
    assert labels == {"${PROP('Dim.workspace')}/${PROP('Dim.deployment')} ${PROP('Dim.repo')}"}


def test_the_alarms_watch_failures_timeouts_5xx_deploys_and_recoveries(synthesized):
    thresholds = synthesized.context["alarms"]
    found = alarms(synthesized)
    prefix = synthesized.context["stackName"]
    machine = [{"Name": "StateMachineArn", "Value": {"Ref": synthesized.output_ref("StateMachineArn")}}]
    assert set(found) == {
        f"{prefix}-{name}"
        for name in ("FailedExecutions", "TimedOutExecutions", "Api5xx", "FailedDeploys", "RecoveryDeadLetters")
    }
    failed = found[f"{prefix}-FailedExecutions"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert failed["Dimensions"] == machine
    assert (failed["Statistic"], failed["Threshold"]) == ("Sum", thresholds["failedExecutions"])
    timed_out = found[f"{prefix}-TimedOutExecutions"]
    assert (timed_out["MetricName"], timed_out["Dimensions"]) == ("ExecutionsTimedOut", machine)
    assert timed_out["Threshold"] == thresholds["timedOutExecutions"]
    api = found[f"{prefix}-Api5xx"]
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    assert api["Threshold"] == thresholds["api5xx"]
    recoveries = found[f"{prefix}-RecoveryDeadLetters"]
    assert recoveries["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert synthesized.render(recoveries["Dimensions"]) == [
        {"Name": "QueueName", "Value": f"<{synthesized.output_ref('RecoveryDeadLettersUrl')}.QueueName>"}
    ]
    for alarm in (failed, timed_out, api, recoveries):
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_a_failed_deploy_anywhere_raises_the_deploy_alarm(synthesized):
    deploys = alarms(synthesized)[f"{synthesized.context['stackName']}-FailedDeploys"]
    # deploy.success is 1 or 0 per attempt: the lowest value over every workspace, deployment and repo.
    (query,) = deploys["Metrics"]
    assert query["Expression"] == (
        'SELECT MIN("deploy.success") FROM SCHEMA("AstroDagDeploy", workspace, deployment, repo)'
    )
    assert query["Period"] == 300 and query["ReturnData"] is True
    assert (deploys["ComparisonOperator"], deploys["Threshold"]) == ("LessThanThreshold", 1)


def test_every_alarm_notifies_the_failure_topic_and_a_quiet_period_is_fine(synthesized):
    topic = {"Ref": synthesized.output_ref("FailureTopicArn")}
    for name, alarm in alarms(synthesized).items():
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["EvaluationPeriods"] == 1
        assert len(alarm["AlarmDescription"]) > 60, name


def test_the_dashboard_shows_the_alarms(synthesized, body):
    (status,) = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    alarm_ids = synthesized.of_type("AWS::CloudWatch::Alarm")
    assert sorted(status["properties"]["alarms"]) == sorted(f"<{alarm_id}.Arn>" for alarm_id in alarm_ids)


@pytest.fixture(scope="module")
def some_alarms_off(synthesize_with):
    return synthesize_with(alarms={"failedExecutions": False, "failedDeploys": False})


def test_false_turns_one_alarm_off(some_alarms_off):
    prefix = some_alarms_off.context["stackName"]
    assert set(alarms(some_alarms_off)) == {
        f"{prefix}-TimedOutExecutions",
        f"{prefix}-Api5xx",
        f"{prefix}-RecoveryDeadLetters",
    }


def test_without_alarms_the_dashboard_remains(without_alarms):
    assert not without_alarms.of_type("AWS::CloudWatch::Alarm")
    _, body = dashboard(without_alarms)
    assert not [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    assert any(line[0] == "AWS/States" for line in graphed(body))
