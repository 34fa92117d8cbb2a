"""The dashboard operators open, and the alarms that notify the failure topic."""

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Capture, Match

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


def dashboard_body(synthesized) -> dict:
    synthesized.template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    body = Capture()
    synthesized.template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardBody": body})
    return json.loads(synthesized.render(body.as_object()))


def graphed(body: dict) -> list[list]:
    return [line for widget in body["widgets"] for line in widget["properties"].get("metrics", [])]


def alarm_names(synthesized) -> set[str]:
    return {alarm["Properties"]["AlarmName"] for alarm in synthesized.resources("AWS::CloudWatch::Alarm").values()}


@pytest.fixture(scope="module")
def body(synthesized) -> dict:
    return dashboard_body(synthesized)


@pytest.fixture(scope="module")
def searches(body) -> list[str]:
    return [line[0]["expression"] for line in graphed(body) if isinstance(line[0], dict)]


def test_the_dashboard_is_named_after_the_stack_and_its_url_is_an_output(synthesized):
    name = synthesized.context["stackName"]
    synthesized.template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": name})
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
    prefix = synthesized.context["stackName"]
    machine = [{"Name": "StateMachineArn", "Value": {"Ref": synthesized.output_ref("StateMachineArn")}}]
    assert alarm_names(synthesized) == {
        f"{prefix}-{name}"
        for name in ("FailedExecutions", "TimedOutExecutions", "Api5xx", "FailedDeploys", "RecoveryDeadLetters",
                     "FailedRecoveries", "LockReleaseFailures")
    }
    at_or_above = {"ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{prefix}-FailedExecutions",
            "Namespace": "AWS/States",
            "MetricName": "ExecutionsFailed",
            "Dimensions": machine,
            "Statistic": "Sum",
            "Threshold": thresholds["failedExecutions"],
            **at_or_above,
        },
    )
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{prefix}-TimedOutExecutions",
            "MetricName": "ExecutionsTimedOut",
            "Dimensions": machine,
            "Threshold": thresholds["timedOutExecutions"],
            **at_or_above,
        },
    )
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{prefix}-Api5xx",
            "Namespace": "AWS/ApiGateway",
            "MetricName": "5XXError",
            "Threshold": thresholds["api5xx"],
            **at_or_above,
        },
    )
    queue_id = synthesized.output_ref("RecoveryDeadLettersUrl")
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{prefix}-RecoveryDeadLetters",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            **at_or_above,
        },
    )


def test_a_recovery_that_fails_times_out_or_is_stopped_raises_an_alarm(synthesized):
    # A failed recovery may not have notified: the alarm is then the only word of it.
    recovery_machine = [{"Name": "StateMachineArn",
                         "Value": {"Ref": synthesized.output_ref("RecoveryStateMachineArn")}}]
    metrics = Capture()
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{synthesized.context['stackName']}-FailedRecoveries",
            "Metrics": metrics,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": synthesized.output_ref("FailureTopicArn")}],
        },
    )
    [expression] = [metric for metric in metrics.as_array() if "Expression" in metric]
    watched = {metric["Id"]: (metric["MetricStat"]["Metric"]["MetricName"], metric["MetricStat"]["Metric"]["Dimensions"],
                              metric["MetricStat"]["Stat"])
               for metric in metrics.as_array() if "MetricStat" in metric}
    assert sorted(watched.values()) == sorted((name, recovery_machine, "Sum") for name in (
        "ExecutionsAborted", "ExecutionsFailed", "ExecutionsTimedOut"))
    assert sorted(expression["Expression"].split(" + ")) == sorted(watched)


def test_a_lock_left_locked_after_a_deploy_is_counted_from_the_execution_log_and_alarms(synthesized):
    # The execution passes "Lock release failed", or "Lock release failed (unchanged)" after a skipped ship
    # (cdk/state_machine.py); its log (level ALL) records it.
    log_group = synthesized.template.find_resources("AWS::Logs::LogGroup")
    (filter_id, metric_filter), = synthesized.resources(
        "AWS::Logs::MetricFilter", {"FilterPattern": '{ ($.type = "PassStateEntered") && '
                                                     '(($.details.name = "Lock release failed") || '
                                                     '($.details.name = "Lock release failed (unchanged)")) }'}
    ).items()
    assert metric_filter["Properties"]["LogGroupName"]["Ref"] in log_group
    assert metric_filter["Properties"]["MetricTransformations"] == [
        {"MetricNamespace": "AstroDagDeploy", "MetricName": "LockReleaseFailures", "MetricValue": "1"}
    ]
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{synthesized.context['stackName']}-LockReleaseFailures",
            "Namespace": "AstroDagDeploy",
            "MetricName": "LockReleaseFailures",
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )


def test_a_failed_deploy_anywhere_raises_the_deploy_alarm(synthesized):
    # deploy.success is 1 or 0 per attempt: the lowest value over every workspace, deployment and repo.
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{synthesized.context['stackName']}-FailedDeploys",
            "Metrics": [
                {
                    "Expression": 'SELECT MIN("deploy.success") FROM SCHEMA("AstroDagDeploy", workspace, deployment, repo)',
                    "Period": 300,
                    "ReturnData": True,
                }
            ],
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": 1,
        },
    )


def test_every_alarm_notifies_the_failure_topic_and_a_quiet_period_is_fine(synthesized):
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    notifying = synthesized.resources(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmActions": [{"Ref": synthesized.output_ref("FailureTopicArn")}],
            "TreatMissingData": "notBreaching",
            "EvaluationPeriods": 1,
            "AlarmDescription": Match.string_like_regexp(".{61,}"),
        },
    )
    assert set(notifying) == set(alarms)


def test_the_dashboard_shows_the_alarms(synthesized, body):
    (status,) = [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    alarm_ids = synthesized.resources("AWS::CloudWatch::Alarm")
    assert sorted(status["properties"]["alarms"]) == sorted(f"<{alarm_id}.Arn>" for alarm_id in alarm_ids)


@pytest.fixture(scope="module")
def some_alarms_off(synthesize_with):
    return synthesize_with(alarms={"failedExecutions": False, "failedDeploys": False})


def test_false_turns_one_alarm_off(some_alarms_off):
    prefix = some_alarms_off.context["stackName"]
    assert alarm_names(some_alarms_off) == {
        f"{prefix}-TimedOutExecutions",
        f"{prefix}-Api5xx",
        f"{prefix}-RecoveryDeadLetters",
        f"{prefix}-FailedRecoveries",
        f"{prefix}-LockReleaseFailures",
    }


def test_without_alarms_the_dashboard_remains(without_alarms):
    without_alarms.template.resource_count_is("AWS::CloudWatch::Alarm", 0)
    body = dashboard_body(without_alarms)
    assert not [widget for widget in body["widgets"] if widget["type"] == "alarm"]
    assert any(line[0] == "AWS/States" for line in graphed(body))
