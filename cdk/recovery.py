"""Recovery of executions that never reach their failure path: stopped (ABORTED), TIMED_OUT, or FAILED with a
terminal error no Catch catches (functions/shared/execution_ends.py).

Step Functions runs no state after a stop, a timeout or a terminal error, and a Lambda invocation in flight runs on
to its end: Upload may still copy, Deploy may still ship. So recovery is a state machine of its own, one execution
per ended execution (named after it), which an operator watches in the console:

    Wait for in-flight invocations -> Planned? -> Recover -> Re-ship needed? -> Re-ship restored bundle
                                              -> Release lock -> Notify -> Recovered

- The wait lasts until every invocation of the ended execution has provably ended (functions/sweeper/
  recovery_start.py: when it was scheduled, plus its function's timeout and Lambda's Init phase).
- Recover renews the ended execution's lease, and only if it still holds it (fencing) puts the repo prefix back.
- If the ended execution's Deploy was invoked, Astro may have received its files: the restored bundle is shipped
  again, so that what Astro last received is what S3 holds.
- The lease is released only if it is still the ended execution's; one notification says what was done.

EventBridge's status-change event invokes the Sweeper, which starts the recovery; the Sweeper also runs on a
schedule, to start the recoveries whose event never arrived (delivery is best effort) and to free leases of
executions that are no longer running.
"""

import math

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import (
    RECOVERY_MAX_EVENT_AGE, RECOVERY_RETRY_ATTEMPTS, SWEEPER, PipelineFunctions, zip_function,
)
from cdk.nag import attribute_finding, resource_finding, suppress
from cdk.state_machine import (
    DYNAMODB_TASK_TIMEOUT, DYNAMODB_TRANSIENT, LAMBDA_RETRIES, caught_rollback_failure, plan_fields,
    lambda_task_timeout_seconds,
)
from cdk.storage import LOCK_KEY_ATTRIBUTE
from cdk.time_budget import recovery_worst_case
from functions.shared.execution_ends import FAILED_STATUS, STOPPED_STATUSES, UNCATCHABLE_ERRORS
from functions.shared.execution_state import StateKey, plan_field_path

# EventBridge retries a delivery Lambda refused (throttling, service errors) for this long, then dead-letters it.
DELIVERY_RETRY_ATTEMPTS = 8
DELIVERY_MAX_EVENT_AGE = Duration.hours(6)
# Where the Sweeper puts what the recovery needs besides the plan summary (functions/sweeper/recovery_start.py).
RECOVERY = "$.recovery"
REQUEST = "$.request"
WAIT_STATE = "Wait for in-flight invocations"
RECOVERY_MARGIN = Duration.minutes(5)


class ExecutionRecovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        state_machine: sfn.IStateMachine,
        functions: PipelineFunctions,
        lock_table: dynamodb.ITable,
        dead_letters: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)
        self._invoked: list[lambda_.IFunction] = []
        self.state_machine = self._recovery_machine(settings, functions, lock_table)

        self.sweeper = zip_function(
            self,
            SWEEPER,
            {
                "PIPELINE_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "RECOVERY_STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "DEPLOY_FUNCTION_ARN": functions.deploy.function_arn,
                "LOCK_TABLE": lock_table.table_name,
            },
            settings=settings,
            layer=functions.powertools,
            # EventBridge invokes it asynchronously: Lambda retries a failed start, then parks the event.
            dead_letter_queue=dead_letters,
            retry_attempts=RECOVERY_RETRY_ATTEMPTS,
            max_event_age=RECOVERY_MAX_EVENT_AGE,
        )
        self._grant_sweeper(state_machine, functions, lock_table)

        # The status events of executions that ended without their failure path: stopped or timed out, or failed
        # with a terminal error (a Fail state of the machine never carries one).
        target = targets.LambdaFunction(
            self.sweeper,
            retry_attempts=DELIVERY_RETRY_ATTEMPTS,
            max_event_age=DELIVERY_MAX_EVENT_AGE,
            dead_letter_queue=dead_letters,
        )
        self.rules = [
            self._status_rule("Rule", "stopped or timed out", state_machine, target,
                              {"status": list(STOPPED_STATUSES)}),
            self._status_rule("TerminalErrorRule", "failed with a terminal error", state_machine, target,
                              {"status": [FAILED_STATUS], "error": list(UNCATCHABLE_ERRORS)}),
        ]
        self.schedule = events.Rule(
            self,
            "Sweep",
            description="Recovers astro-dag-deploy executions whose status event never arrived; frees stale leases",
            schedule=events.Schedule.rate(Duration.minutes(settings.recovery_sweep_minutes)),
            targets=[targets.LambdaFunction(self.sweeper, retry_attempts=0)],
        )

    def _status_rule(self, construct_id: str, how: str, state_machine: sfn.IStateMachine,
                     target: events.IRuleTarget, detail: dict) -> events.Rule:
        return events.Rule(
            self,
            construct_id,
            description=f"Starts the recovery of astro-dag-deploy executions that {how}",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={**detail, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[target],
        )

    # ---- the recovery state machine ----

    def _recovery_machine(
        self, settings: StackSettings, functions: PipelineFunctions, lock_table: dynamodb.ITable
    ) -> sfn.StateMachine:
        notify = self._task(
            "Notify",
            functions.notify,
            payload=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.string_at(f"{RECOVERY}.execution"),
                    "execution_arn": sfn.JsonPath.string_at(f"{RECOVERY}.execution_arn"),
                    "request": sfn.JsonPath.object_at(REQUEST),
                    "state": sfn.JsonPath.entire_payload,
                }
            ),
            result_path=StateKey.NOTIFICATION.path,
        )
        notify.next(sfn.Succeed(self, "Recovered"))

        release = tasks.DynamoDeleteItem(
            self,
            "ReleaseLock",
            state_name="Release lock",
            table=lock_table,
            key={LOCK_KEY_ATTRIBUTE: tasks.DynamoAttributeValue.from_string(
                sfn.JsonPath.string_at(plan_field_path("lock_key")))},
            # Fencing: only while the ended execution still holds it.
            condition_expression="holder = :me",
            expression_attribute_values={
                ":me": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.string_at(plan_field_path("execution")))
            },
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(DYNAMODB_TASK_TIMEOUT),
        )
        DYNAMODB_TRANSIENT.apply(release)
        # Not held any more (LOCK_NOT_HELD), or failing past its retries: the notification says so.
        release.add_catch(notify, errors=[sfn.Errors.ALL], result_path=StateKey.LOCK_RELEASE.path)
        release.next(notify)

        # Astro must end up with what S3 holds: the restored prefix, shipped as the ended execution's Deploy would
        # have (an empty repo included: it held nothing before).
        reship = self._task(
            "Reship",
            functions.deploy,
            state_name="Re-ship restored bundle",
            payload=sfn.TaskInput.from_object(
                {
                    **plan_fields(),
                    "allow_empty_deployment": True,
                    "record_live": False,
                }
            ),
            result_path=StateKey.DEPLOY.path,
        )
        reship.add_catch(release, errors=[sfn.Errors.ALL], result_path=StateKey.RESHIP_ERROR.path)
        reship.next(release)
        reship_needed = (
            sfn.Choice(self, "ReshipNeeded", state_name="Re-ship needed?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals(StateKey.ROLLBACK.field_path("status"), "restored"),
                    sfn.Condition.boolean_equals(f"{RECOVERY}.deploy_may_have_shipped", True),
                ),
                reship,
            )
            .otherwise(release)
        )

        recover = self._task("Recover", functions.recover, result_path=StateKey.ROLLBACK.path)
        rollback_failed = caught_rollback_failure(self, recover, "RecoverFailed", "Recover failed")
        recover.next(reship_needed)
        rollback_failed.next(release)

        # Parse's plan summary names the lock: without it the execution locked and changed nothing.
        planned = (
            sfn.Choice(self, "Planned", state_name="Planned?")
            .when(sfn.Condition.is_present(plan_field_path("lock_key")), recover)
            .otherwise(notify)
        )
        # A Wait state: the console shows the recovery waiting for the invocation still running.
        wait = sfn.Wait(
            self, "WaitForInFlight", state_name=WAIT_STATE,
            time=sfn.WaitTime.timestamp_path(f"{RECOVERY}.in_flight_until"),
        ).next(planned)

        self.log_group = logs.LogGroup(self, "RecoveryLogs", retention=settings.log_retention)
        worst_case = sum(phase.seconds for phase in recovery_worst_case(settings))
        machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(wait),
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=Duration.seconds(math.ceil(worst_case) + RECOVERY_MARGIN.to_seconds()),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        suppress(
            machine.role,
            "IAM5",
            "CloudWatch Logs' log delivery actions (logging level ALL) and X-Ray's trace actions support no "
            "resource-level permissions: they need Resource *.",
            ["Resource::*"],
        )
        suppress(
            machine.role,
            "IAM5",
            "The Lambda task grant covers the function's versions and aliases (<function ARN>:*); all are this "
            "stack's own pipeline functions.",
            [attribute_finding(function.node.default_child, ":*") for function in self._invoked],
        )
        return machine

    def _task(
        self,
        construct_id: str,
        function: lambda_.IFunction,
        *,
        result_path: str,
        state_name: str | None = None,
        payload: sfn.TaskInput | None = None,
    ) -> tasks.LambdaInvoke:
        self._invoked.append(function)
        task = tasks.LambdaInvoke(
            self,
            construct_id,
            state_name=state_name,
            lambda_function=function,
            payload=payload,
            payload_response_only=True,
            result_path=result_path,
            task_timeout=sfn.Timeout.duration(
                Duration.seconds(lambda_task_timeout_seconds(function.timeout.to_seconds()))
            ),
            retry_on_service_exceptions=False,
        )
        for policy in LAMBDA_RETRIES:
            policy.apply(task)
        return task

    # ---- what the Sweeper may do ----

    def _grant_sweeper(
        self, pipeline: sfn.IStateMachine, functions: PipelineFunctions, lock_table: dynamodb.ITable
    ) -> None:
        sweeper = self.sweeper
        sweeper.add_to_role_policy(iam.PolicyStatement(
            actions=["states:ListExecutions"],
            resources=[pipeline.state_machine_arn, self.state_machine.state_machine_arn],
        ))
        read = pipeline.grant_execution(sweeper, "states:DescribeExecution", "states:GetExecutionHistory")
        read_recoveries = self.state_machine.grant_execution(sweeper, "states:DescribeExecution")
        self.state_machine.grant_start_execution(sweeper)
        # How long each invocation in flight may still run.
        sweeper.add_to_role_policy(iam.PolicyStatement(
            actions=["lambda:GetFunctionConfiguration"],
            resources=[function.function_arn for function in functions.invoked],
        ))
        sweeper.add_to_role_policy(iam.PolicyStatement(
            actions=["dynamodb:Scan", "dynamodb:DeleteItem"], resources=[lock_table.table_arn],
        ))
        suppress(
            sweeper.role,
            "IAM5",
            "Execution names exist only at run time: the grants cover execution:<machine name>:* of the deploy and "
            "the recovery state machines, and of no other.",
            [resource_finding(self, resource) for grant in (read, read_recoveries)
             for resource in grant.principal_statement.resources],
        )
