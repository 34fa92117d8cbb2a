"""The operators' dashboard, and the alarms that notify the failure topic.

The steps publish `<step>.success` (1/0), `<step>.time` (ms) and `lock.wait` (s) in the AstroDagDeploy namespace
with the dimensions workspace, deployment and repo, whose values only requests know: the graphs find them with
SEARCH expressions, and the deploy alarm aggregates them with a Metrics Insights query.
"""

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import METRICS_NAMESPACE
from cdk.notifications import FailureNotifications
from cdk.state_machine import LOCK_RELEASE_FAILURES_METRIC

PERIOD = Duration.minutes(5)
STEP_DIMENSIONS = ("workspace", "deployment", "repo")
# The step names the functions give shared.observability.step_metrics, in pipeline order.
STEPS = ("parse", "dry_run", "lock", "compare", "snapshot", "clear_prefix", "upload", "deploy", "rollback", "notify")
SERIES_LABEL = "${PROP('Dim.workspace')}/${PROP('Dim.deployment')} ${PROP('Dim.repo')}"
WIDTH = 24  # the dashboard grid's width
GRAPH_HEIGHT = 6


def step_search(metric_name: str, statistic: str) -> str:
    """Every series of the metric, one per workspace/deployment/repo that published it."""
    schema = ",".join((METRICS_NAMESPACE, *STEP_DIMENSIONS))
    return f"SEARCH('{{{schema}}} MetricName=\"{metric_name}\"', '{statistic}', {int(PERIOD.to_seconds())})"


def failed_deploys_query() -> str:
    """One series: the lowest deploy.success of the period over every deployment (0: a deploy attempt failed)."""
    dimensions = ", ".join(STEP_DIMENSIONS)
    return f'SELECT MIN("deploy.success") FROM SCHEMA("{METRICS_NAMESPACE}", {dimensions})'


class PipelineMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        state_machine: sfn.StateMachine,
        recovery_machine: sfn.StateMachine,
        api: apigw.RestApi,
        notifications: FailureNotifications,
        recovery_dead_letters: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        self._settings = settings
        self._action = actions.SnsAction(notifications.topic)

        self.alarms = (self._alarms(state_machine, recovery_machine, api, recovery_dead_letters)
                       if settings.alarms.enabled else [])
        if self.alarms:
            notifications.allow_alarms()

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=settings.stack_name, default_interval=Duration.days(1)
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=(
                    f"# {settings.stack_name}\n"
                    "Every failed execution is notified with the failed step, its error and what was rolled back; "
                    "the notification links to the execution in the Step Functions console. Per-step graphs show "
                    "one line per workspace/deployment repo."
                ),
                width=WIDTH,
                height=2,
            )
        )
        self.dashboard.add_widgets(*self._execution_widgets(state_machine, self.alarms))
        self.dashboard.add_widgets(*self._api_widgets(api))
        self.dashboard.add_widgets(
            self._search_graph("Waiting for the deployment's lock (s)", "lock.wait", "Maximum"),
            cloudwatch.GraphWidget(
                title="Recoveries left to a person (dead-letter queue)",
                left=[recovery_dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD)],
                width=WIDTH // 2,
                height=GRAPH_HEIGHT,
            ),
        )
        for step in STEPS:
            self.dashboard.add_widgets(
                self._search_graph(f"{step}: success (1 = all succeeded)", f"{step}.success", "Average"),
                self._search_graph(f"{step}: longest run (ms)", f"{step}.time", "Maximum"),
            )

    def _execution_widgets(
        self, state_machine: sfn.StateMachine, alarms: list[cloudwatch.Alarm]
    ) -> list[cloudwatch.IWidget]:
        counts = {
            "started": state_machine.metric_started,
            "succeeded": state_machine.metric_succeeded,
            "failed": state_machine.metric_failed,
            "timed out": state_machine.metric_timed_out,
            "aborted (stopped)": state_machine.metric_aborted,
        }
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Executions",
                left=[metric(label=label, period=PERIOD, statistic="Sum") for label, metric in counts.items()],
                width=WIDTH // 3,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Execution duration (ms)",
                left=[
                    state_machine.metric_time(label=statistic, period=PERIOD, statistic=statistic)
                    for statistic in ("Average", "p90", "Maximum")
                ],
                width=WIDTH // 3,
                height=GRAPH_HEIGHT,
            ),
        ]
        if alarms:
            widgets.append(
                cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=WIDTH // 3, height=GRAPH_HEIGHT)
            )
        return widgets

    def _api_widgets(self, api: apigw.RestApi) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title="API requests",
                left=[
                    api.metric_count(label="requests", period=PERIOD, statistic="Sum"),
                    api.metric_client_error(label="4xx (refused requests)", period=PERIOD, statistic="Sum"),
                    api.metric_server_error(label="5xx", period=PERIOD, statistic="Sum"),
                ],
                width=WIDTH // 2,
                height=GRAPH_HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="API latency (ms)",
                left=[
                    api.metric_latency(label=statistic, period=PERIOD, statistic=statistic)
                    for statistic in ("p50", "p90", "Maximum")
                ],
                width=WIDTH // 2,
                height=GRAPH_HEIGHT,
            ),
        ]

    def _search_graph(self, title: str, metric_name: str, statistic: str) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=[
                cloudwatch.MathExpression(
                    expression=step_search(metric_name, statistic), using_metrics={}, label=SERIES_LABEL, period=PERIOD
                )
            ],
            width=WIDTH // 2,
            height=GRAPH_HEIGHT,
        )

    def _alarms(
        self, state_machine: sfn.StateMachine, recovery_machine: sfn.StateMachine, api: apigw.RestApi,
        recovery_dead_letters: sqs.IQueue,
    ) -> list[cloudwatch.Alarm]:
        settings = self._settings.alarms
        alarms = []
        if settings.failed_executions is not None:
            alarms.append(
                self._alarm(
                    "FailedExecutions",
                    state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    settings.failed_executions,
                    "Deploy executions failed. Each one sent its own notification (failed step, error, rollback) "
                    "with a link to the execution.",
                )
            )
        if settings.timed_out_executions is not None:
            alarms.append(
                self._alarm(
                    "TimedOutExecutions",
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                    settings.timed_out_executions,
                    "Deploy executions timed out (executionTimeoutMinutes). Recover restores each one's repo "
                    "prefix, frees its lock and notifies it (the RecoveryDeadLetters alarm says when it cannot).",
                )
            )
        if settings.api_5xx is not None:
            alarms.append(
                self._alarm(
                    "Api5xx",
                    api.metric_server_error(period=PERIOD, statistic="Sum"),
                    settings.api_5xx,
                    "The deployments API answered 5xx: CI jobs could not start deploys or read their status. See the "
                    "API's access logs.",
                )
            )
        if settings.failed_deploys:
            alarms.append(
                self._alarm(
                    "FailedDeploys",
                    cloudwatch.MathExpression(
                        expression=failed_deploys_query(), using_metrics={}, label="lowest deploy.success", period=PERIOD
                    ),
                    1,
                    "A Deploy attempt failed (deploy.success = 0), retried ones included: Astro or the astro CLI "
                    "is failing. The dashboard's deploy graph shows which deployment.",
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                )
            )
        alarms.append(
            self._alarm(
                "RecoveryDeadLetters",
                recovery_dead_letters.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                1,
                "A stopped or timed-out execution could not be recovered automatically: its repo prefix may hold a "
                "partial set of files and its deployment stays locked until the lease expires. The queue's "
                "messages name the executions; restore them by hand (README, Operations).",
            )
        )
        alarms.append(
            self._alarm(
                "FailedRecoveries",
                cloudwatch.MathExpression(
                    expression="failed + timedOut + aborted",
                    using_metrics={
                        "failed": recovery_machine.metric_failed(period=PERIOD, statistic="Sum"),
                        "timedOut": recovery_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                        "aborted": recovery_machine.metric_aborted(period=PERIOD, statistic="Sum"),
                    },
                    label="recoveries that did not succeed",
                    period=PERIOD,
                ),
                1,
                "A recovery execution failed, timed out or was stopped. The deploy execution of the same name ended "
                "without its failure path and may be left unrecovered: its repo prefix partly changed, Astro's "
                "bundle unlike S3, its deployment locked until the lease ends, and no notification sent. Open the "
                "recovery in the Step Functions console; recover by hand (README, Operations).",
            )
        )
        alarms.append(
            self._alarm(
                "LockReleaseFailures",
                cloudwatch.Metric(
                    namespace=METRICS_NAMESPACE, metric_name=LOCK_RELEASE_FAILURES_METRIC, period=PERIOD,
                    statistic="Sum",
                ),
                1,
                "A deploy succeeded but its lock could not be released (the execution passed 'Lock release failed'; "
                "its lock_release holds the error): the deployment stays locked until the lease ends. Free it by "
                "hand (README, Operations).",
            )
        )
        return alarms

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        threshold: int,
        description: str,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._settings.stack_name}-{construct_id}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            # No executions, no requests, no deploys: nothing is wrong.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        return alarm
