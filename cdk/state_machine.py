"""The deploy pipeline, one deployment at a time:

Parse -> AcquireLock -> Lock acquired? -> CompareWithLive -> Unchanged? -> Snapshot -> ClearPrefix -> Upload ->
ShipOrDefer -> Deploy -> Deployed, waiting (WaitForLock, until the lock's release wakes it: cdk/lock_wakeups.py)
and trying again while another execution holds the deployment's lock.

A ship of the main Dag bundle holds the lock only while it gathers: Deploy then hands it over to the deployment's
ship slot (functions/shared/ship_slot.py) for the CLI's upload, and ends the slot itself; other executions change
their repos meanwhile. A ship of a per-repo bundle keeps the lock to the end (ReleaseLock).

In a burst the ships coalesce (functions/shared/deferred_ships.py): a holder that finds executions of other repos
waiting, or a ship in flight, releases the lock without shipping (DeferShip) and waits until a later ship carries
its change: it ends "Deployed by another ship", or, told to ship itself, takes the lock again and goes to Deploy.
A push to a repo whose deferred change is not shipped yet ships it first (ShipDeferredChanges).

A failure before the repo prefix can change is notified; a later one is rolled back to the snapshot (which also
ends the execution's ship slot) and the lock released first. A request identical to what is live releases the lock
and ends Unchanged; a dry run goes from Parse to its DryRun report and ends there, having changed nothing.

The state that flows between the states is one contract (functions/shared/execution_state.py): every result path
comes from its keys. JSONPath, not JSONata: the local mode runs this exact definition on moto's interpreter, which
has no JSONata.
"""

import dataclasses
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import METRICS_NAMESPACE, PipelineFunctions
from cdk.nag import attribute_finding, suppress
from cdk.storage import LOCK_KEY_ATTRIBUTE
from functions.shared.deferred_ships import DEFER, SHIP_OR_DEFER
from functions.shared.errors import LockFree, ShipInFlight
from functions.shared.execution_state import LOCK_NOT_HELD, ROLLBACK_FAILED, RunScope, StateKey, plan_field_path


@dataclass(frozen=True)
class RetryPolicy:
    """One Retry of a task, as Step Functions runs it; the time budget (cdk/time_budget.py) reads the same figures."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float
    # Whether an attempt that ends with these errors may have run to the task's timeout first.
    late: bool = True

    def longest_waits(self) -> list[float]:
        """The intervals before each retry, without jitter (which only shortens them)."""
        return [self.interval_seconds * self.backoff_rate**retry for retry in range(self.max_attempts)]

    def apply(self, task: sfn.TaskStateBase, jitter: bool = True) -> None:
        task.add_retry(
            errors=list(self.errors),
            interval=Duration.seconds(self.interval_seconds),
            max_attempts=self.max_attempts,
            backoff_rate=self.backoff_rate,
            # Jitter spreads the retries of concurrent executions that were throttled together.
            jitter_strategy=sfn.JitterType.FULL if jitter else None,
        )


# Lambda refuses an invocation over its concurrency before the function runs: cheap to try again, often.
LAMBDA_THROTTLED = RetryPolicy(("Lambda.TooManyRequestsException",), 2, 6, 2, late=False)
# Errors of the Lambda service itself, not of our code, that may come after the function ran: worth another
# attempt, but each may cost a whole function timeout.
LAMBDA_SERVICE_ERRORS = RetryPolicy(
    (
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.ClientExecutionTimeoutException",
    ),
    2,
    2,
    2,
)
LAMBDA_RETRIES = (LAMBDA_THROTTLED, LAMBDA_SERVICE_ERRORS)
LAMBDA_TRANSIENT_ERRORS = tuple(error for policy in LAMBDA_RETRIES for error in policy.errors)
# DynamoDB throttling or a fault on its side: the release is idempotent, try again.
DYNAMODB_TRANSIENT = RetryPolicy(
    (
        "DynamoDB.ProvisionedThroughputExceededException",
        "DynamoDB.ThrottlingException",
        "DynamoDB.RequestLimitExceeded",
        "DynamoDB.InternalServerError",
    ),
    1,
    6,
    2,
)
# The states an execution passes through when its lock could not be released (after a deploy, after finding the
# request unchanged), and the metric that counts them from the execution log (an alarm in cdk/monitoring.py).
LOCK_RELEASE_FAILED_STATE = "Lock release failed"
LOCK_RELEASE_FAILED_UNCHANGED_STATE = "Lock release failed (unchanged)"
LOCK_RELEASE_FAILURES_METRIC = "LockReleaseFailures"
# Beyond the function's own timeout, so that a slow step fails with Lambda's timeout error, not the task's.
TASK_TIMEOUT_MARGIN = Duration.seconds(30)
DYNAMODB_TASK_TIMEOUT = Duration.seconds(30)
# How long a deferred execution waits for a ship to carry its change, beyond one whole Deploy attempt; then it
# takes the lock again and ships itself, unless a ship carried it meanwhile. A safety net: the carrying ship, or
# the release that leaves nobody to ship, normally tells it much sooner.
DEFER_MARGIN = Duration.seconds(60)


def lambda_task_timeout_seconds(function_timeout_seconds: float) -> float:
    return function_timeout_seconds + TASK_TIMEOUT_MARGIN.to_seconds()


def defer_window_seconds(deploy_timeout_seconds: float) -> float:
    return lambda_task_timeout_seconds(deploy_timeout_seconds) + DEFER_MARGIN.to_seconds()


def _task_timeout(function: lambda_.IFunction) -> sfn.Timeout:
    return sfn.Timeout.duration(Duration.seconds(lambda_task_timeout_seconds(function.timeout.to_seconds())))


def plan_fields(*names: str) -> dict[str, str]:
    """A task payload of the run's scope (RunScope's fields) and `names`, each read from Parse's plan summary."""
    scope = [field.name for field in dataclasses.fields(RunScope)]
    return {name: sfn.JsonPath.string_at(plan_field_path(name)) for name in [*scope, *names]}


def unless_handed_over(scope: Construct, construct_id: str, state_name: str, handed_over: str,
                       release: sfn.IChainable, then: sfn.IChainable) -> sfn.Choice:
    """Release the lock, unless the flag at `handed_over` says the execution handed it over to its ship (functions/
    shared/ship_slot.py) and holds none: then straight on to `then`."""
    return (sfn.Choice(scope, construct_id, state_name=state_name)
            .when(sfn.Condition.boolean_equals(handed_over, True), then)
            .otherwise(release))


def caught_rollback_failure(scope: Construct, restore: sfn.TaskStateBase, construct_id: str, state_name: str
                            ) -> sfn.Pass:
    """The state a restore's Catch leads to: its error as a RollbackFailure document under `rollback`, which the
    notification reports (its subject says ROLLBACK FAILED)."""
    failed = sfn.Pass(
        scope,
        construct_id,
        state_name=state_name,
        parameters={
            "status": ROLLBACK_FAILED,
            "error": sfn.JsonPath.string_at(StateKey.ROLLBACK_ERROR.field_path("Error")),
            "cause": sfn.JsonPath.string_at(StateKey.ROLLBACK_ERROR.field_path("Cause")),
        },
        result_path=StateKey.ROLLBACK.path,
    )
    restore.add_catch(failed, errors=[sfn.Errors.ALL], result_path=StateKey.ROLLBACK_ERROR.path)
    return failed


class DeployStateMachine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        functions: PipelineFunctions,
        lock_table: dynamodb.ITable,
    ):
        super().__init__(scope, construct_id)
        self._lock_table = lock_table
        self._invoked: list[lambda_.Function] = []

        failed = sfn.Fail(
            self,
            "Failed",
            error_path=StateKey.FAILURE.field_path("error"),
            cause_path=StateKey.FAILURE.field_path("cause"),
        )
        notify = self._task(
            "Notify",
            functions.notify,
            payload=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.execution_name,
                    "execution_arn": sfn.JsonPath.execution_id,
                    # Not the request (up to 256 KiB itself): Notify reads the names from the plan summary, or from
                    # the report Parse stored when it refused the request.
                    "state": sfn.JsonPath.entire_payload,
                }
            ),
            result_path=StateKey.NOTIFICATION.path,
        )
        # A notification that cannot be sent must not hide the original failure: straight on to Failed.
        notify.add_catch(failed, errors=[sfn.Errors.ALL], result_path=StateKey.NOTIFICATION_ERROR.path)
        notify.next(failed)

        # After a failure the lock is released whatever happens: never let it block the notification.
        release_after_failure = self._release_lock("ReleaseLockAfterFailure", state_name="Release lock after failure")
        release_after_failure.add_catch(notify, errors=[sfn.Errors.ALL], result_path=StateKey.LOCK_RELEASE.path)
        release_after_failure.next(notify)
        rollback = self._task("Rollback", functions.rollback, result_path=StateKey.ROLLBACK.path)
        # A rollback that fails is reported (the notification's subject says ROLLBACK FAILED), never swallowed.
        rollback_failed = caught_rollback_failure(self, rollback, "RollbackFailed", "Rollback failed")
        # A ship that failed once its Deploy had handed the lock over: Rollback ended the ship slot, and this
        # execution holds no lock to release.
        rollback.next(unless_handed_over(self, "ShipSlotEndedChoice", "Ship slot ended?",
                                         StateKey.ROLLBACK.field_path("ship_ended"), release_after_failure, notify))
        rollback_failed.next(release_after_failure)

        parse = self._step(
            "Parse",
            functions.parse,
            notify,
            payload=sfn.TaskInput.from_object(
                {"request": sfn.JsonPath.entire_payload, "execution": sfn.JsonPath.execution_name}
            ),
            # The plan summary becomes the state: every later step reads it.
            result_path=sfn.JsonPath.entire_payload,
            # On a failure the state is the failure alone: the request (up to 256 KiB) stays out of it.
            failure_replaces_state=True,
        )
        # On a loop the state holds the previous attempt's $.lock: the function counts attempts and the wait.
        # An AcquireLock that failed may have taken the lock first (a crash after the put): release it by Parse's key.
        acquire_lock = self._step(
            "AcquireLock", functions.lock, release_after_failure, result_path=StateKey.LOCK.path
        )
        # Nothing under the repo prefix has changed before Snapshot: from there on a failure is rolled back.
        snapshot = self._step("Snapshot", functions.snapshot, rollback, result_path=StateKey.RESTORE_POINT.path)
        clear_prefix = self._step("ClearPrefix", functions.clear_prefix, rollback, result_path=StateKey.CLEAR.path)
        upload = self._step("Upload", functions.upload, rollback, result_path=StateKey.UPLOAD.path)
        deployed = sfn.Succeed(self, "Deployed")
        release_lock = self._release_lock("ReleaseLock")
        # The lease expired and another execution took the lock: this one has deployed all the same.
        release_lock.add_catch(deployed, errors=[LOCK_NOT_HELD], result_path=StateKey.LOCK_RELEASE.path)
        # Any other failure, past the retries, leaves the lock to its lease: the deploy stands, the failure is kept
        # in the state under lock_release and shown by this state (the LockReleaseFailures metric counts it).
        lock_release_failed = sfn.Pass(self, "LockReleaseFailed", state_name=LOCK_RELEASE_FAILED_STATE).next(deployed)
        release_lock.add_catch(lock_release_failed, errors=[sfn.Errors.ALL], result_path=StateKey.LOCK_RELEASE.path)

        # The console shows the execution waiting for the lock, until the waker hands it the lock's turn (the
        # callback's success) or, should that wake-up be lost, for as long as AcquireLock said (the timeout).
        wait_for_lock = self._step(
            "WaitForLock",
            functions.lock,
            release_after_failure,
            payload=sfn.TaskInput.from_object(
                {"state": sfn.JsonPath.entire_payload, "task_token": sfn.JsonPath.task_token}
            ),
            result_path=sfn.JsonPath.DISCARD,
            waits_for_callback=sfn.Timeout.at(StateKey.LOCK.field_path("wait_seconds")),
            # Lambda's transient errors too: AcquireLock, which retries them, follows at once, and the wait stays
            # within the lock's time budget (cdk/time_budget.py).
            resumes=(acquire_lock, [sfn.Errors.TIMEOUT, LockFree.__name__, *LAMBDA_TRANSIENT_ERRORS]),
        )
        wait_for_lock.next(acquire_lock)
        compare = self._step("CompareWithLive", functions.compare, release_after_failure, result_path=StateKey.LIVE.path)
        # A ship that would change nothing is skipped, unless the request forces it; decided under the lock.
        unchanged = sfn.Succeed(self, "Unchanged")
        release_unchanged = self._release_lock("ReleaseLockUnchanged", state_name="Release lock (unchanged)")
        release_unchanged.add_catch(unchanged, errors=[LOCK_NOT_HELD], result_path=StateKey.LOCK_RELEASE.path)
        release_unchanged.add_catch(
            sfn.Pass(self, "LockReleaseFailedUnchanged", state_name=LOCK_RELEASE_FAILED_UNCHANGED_STATE).next(unchanged),
            errors=[sfn.Errors.ALL],
            result_path=StateKey.LOCK_RELEASE.path,
        )
        # Ship now, or let the ship of an execution waiting to change another repo carry this change.
        ship_or_defer = self._step(
            "ShipOrDefer",
            functions.lock,
            rollback,
            payload=sfn.TaskInput.from_object({"action": SHIP_OR_DEFER, "state": sfn.JsonPath.entire_payload}),
            result_path=StateKey.SHIP_OR_DEFER.path,
        )
        # Releases the lock and waits, as the console shows, for the ship that carries the change to say so.
        defer_ship = self._step(
            "DeferShip",
            functions.lock,
            rollback,
            payload=sfn.TaskInput.from_object(
                {"action": DEFER, "state": sfn.JsonPath.entire_payload, "task_token": sfn.JsonPath.task_token}
            ),
            result_path=StateKey.CARRIED.path,
            waits_for_callback=sfn.Timeout.duration(
                Duration.seconds(defer_window_seconds(settings.deploy_timeout_seconds))
            ),
            # No word in time, or the lock's release unsure: take the lock (again) and ship.
            resumes=(acquire_lock, [sfn.Errors.TIMEOUT, *LAMBDA_TRANSIENT_ERRORS]),
        )
        # Another execution's ship is uploading: nothing is gathered before it has ended, the next ship carries it.
        deploy = self._step("Deploy", functions.deploy, rollback, result_path=StateKey.DEPLOY.path,
                            resumes=(defer_ship, [ShipInFlight.__name__]))
        carried = sfn.Succeed(self, "DeployedByAnotherShip", state_name="Deployed by another ship")
        defer_ship.next(
            sfn.Choice(self, "CarriedChoice", state_name="Carried?")
            .when(sfn.Condition.boolean_equals(StateKey.CARRIED.field_path("shipped"), True), carried)
            .otherwise(acquire_lock)
        )
        ship = snapshot.next(clear_prefix).next(upload).next(ship_or_defer).next(
            sfn.Choice(self, "DeferShipChoice", state_name="Defer ship?")
            .when(sfn.Condition.boolean_equals(StateKey.SHIP_OR_DEFER.field_path("defer"), True), defer_ship)
            .otherwise(deploy)
        )
        deploy.next(unless_handed_over(self, "LockHandedOverChoice", "Lock handed over?",
                                       StateKey.DEPLOY.field_path("lock_handed_over"), release_lock.next(deployed),
                                       deployed))
        # Another execution's change to this repo waits for a ship: shipped before this one changes the repo, so
        # that every restore point is what Astro last received. Nothing of this execution has changed yet, and it
        # goes on under the lock.
        ship_deferred_first = self._step(
            "ShipDeferredChanges",
            functions.deploy,
            release_after_failure,
            payload=sfn.TaskInput.from_object(
                {**plan_fields("lock_key", "allow_empty_deployment"), "keeps_lock": True}
            ),
            result_path=StateKey.FLUSH.path,
        )
        ship_deferred_first.next(compare)
        compare.next(
            sfn.Choice(self, "UnchangedChoice", state_name="Unchanged?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.boolean_equals(StateKey.LIVE.field_path("unchanged"), True),
                    sfn.Condition.boolean_equals(plan_field_path("force"), False),
                ),
                release_unchanged.next(unchanged),
            )
            .otherwise(ship)
        )
        acquired = sfn.Condition.boolean_equals(StateKey.LOCK.field_path("acquired"), True)
        lock_acquired = (
            sfn.Choice(self, "LockAcquired", state_name="Lock acquired?")
            # A deferred execution back for the lock (told to ship itself, or not told in time): its change is in
            # the bucket already.
            .when(
                sfn.Condition.and_(
                    acquired,
                    sfn.Condition.is_present(StateKey.SHIP_OR_DEFER.field_path("defer")),
                    sfn.Condition.boolean_equals(StateKey.SHIP_OR_DEFER.field_path("defer"), True),
                ),
                deploy,
            )
            .when(
                sfn.Condition.and_(acquired, sfn.Condition.boolean_equals(StateKey.LOCK.field_path("flush_first"), True)),
                ship_deferred_first,
            )
            .when(acquired, compare)
            .otherwise(wait_for_lock)
        )

        # A dry run: Parse ran every check; the report compares with what is live and fails on any problem.
        dry_run = self._step("DryRun", functions.dry_run, notify, result_path=StateKey.DRY_RUN_REPORT.path)
        dry_run.next(
            sfn.Choice(self, "DryRunPassedChoice", state_name="Dry run passed?")
            .when(
                sfn.Condition.boolean_equals(StateKey.DRY_RUN_REPORT.field_path("passed"), True),
                sfn.Succeed(self, "DryRunPassed", state_name="Dry run passed"),
            )
            .otherwise(
                sfn.Fail(
                    self,
                    "DryRunFoundProblems",
                    state_name="Dry run found problems",
                    error_path=StateKey.DRY_RUN_REPORT.field_path("error"),
                    cause_path=StateKey.DRY_RUN_REPORT.field_path("cause"),
                )
            )
        )
        # Parse's summary says dry_run (false by default), and so does its answer to a dry run it refused.
        definition = parse.next(
            sfn.Choice(self, "DryRunChoice", state_name="Dry run?")
            .when(sfn.Condition.boolean_equals(plan_field_path("dry_run"), True), dry_run)
            .otherwise(acquire_lock.next(lock_acquired))
        )

        self.log_group = logs.LogGroup(self, "ExecutionLogs", retention=settings.log_retention)
        self.log_group.add_metric_filter(
            "LockReleaseFailures",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.type", "=", "PassStateEntered"),
                logs.FilterPattern.any(
                    logs.FilterPattern.string_value("$.details.name", "=", LOCK_RELEASE_FAILED_STATE),
                    logs.FilterPattern.string_value("$.details.name", "=", LOCK_RELEASE_FAILED_UNCHANGED_STATE),
                ),
            ),
            metric_namespace=METRICS_NAMESPACE,
            metric_name=LOCK_RELEASE_FAILURES_METRIC,
            metric_value="1",
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            query_language=sfn.QueryLanguage.JSON_PATH,
            timeout=Duration.minutes(settings.execution_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        suppress(
            self.state_machine.role,
            "IAM5",
            "CloudWatch Logs' log delivery actions (logging level ALL) and X-Ray's trace actions support no "
            "resource-level permissions: they need Resource *.",
            ["Resource::*"],
        )
        suppress(
            self.state_machine.role,
            "IAM5",
            "The Lambda task grant covers the function's versions and aliases (<function ARN>:*); all are this "
            "stack's own pipeline functions.",
            [attribute_finding(function.node.default_child, ":*") for function in self._invoked],
        )

    def _task(
        self,
        name: str,
        function: lambda_.Function,
        *,
        result_path: str,
        payload: sfn.TaskInput | None = None,
        waits_for_callback: sfn.Timeout | None = None,
    ) -> tasks.LambdaInvoke:
        """A Lambda task, retried on Lambda's transient errors; `waits_for_callback`: it passes a task token and
        waits, at most that long, for the token's success or failure instead of the function's result (not retried:
        the caller decides what a failed wait leads to)."""
        self._invoked.append(function)
        callback = {"integration_pattern": sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN} if waits_for_callback else {
            # The function's own result, not Lambda's Invoke envelope; and the function ARN as the Resource.
            "payload_response_only": True
        }
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload=payload,
            result_path=result_path,
            task_timeout=waits_for_callback or _task_timeout(function),
            **callback,
            # Replaced by the retry below: CDK's default misses Lambda.TooManyRequestsException.
            retry_on_service_exceptions=False,
        )
        if not waits_for_callback:
            for policy in LAMBDA_RETRIES:
                policy.apply(task)
        return task

    def _step(
        self,
        name: str,
        function: lambda_.Function,
        on_failure: sfn.IChainable,
        *,
        result_path: str,
        payload: sfn.TaskInput | None = None,
        failure_replaces_state: bool = False,
        waits_for_callback: sfn.Timeout | None = None,
        resumes: tuple[sfn.IChainable, list[str]] | None = None,
    ) -> tasks.LambdaInvoke:
        """A pipeline task whose every failure is summarized (a Failure document), then handed to `on_failure`;
        with `failure_replaces_state`, the summary is all the state holds from then on. `resumes`: errors that are
        not failures, and the state they lead to instead, the state unchanged."""
        task = self._task(name, function, result_path=result_path, payload=payload,
                          waits_for_callback=waits_for_callback)
        if resumes:
            resume_at, errors = resumes
            task.add_catch(resume_at, errors=errors, result_path=sfn.JsonPath.DISCARD)
        # Where the Catch puts the error: beside the state, or (a CaughtError document) in place of it.
        caught_path = sfn.JsonPath.entire_payload if failure_replaces_state else StateKey.FAILURE.path

        def caught(field_name: str) -> str:
            return f"$.{field_name}" if failure_replaces_state else StateKey.FAILURE.field_path(field_name)

        # Which step failed, with the error and cause the Fail state reports.
        failure = {
            "state": name,
            "error": sfn.JsonPath.string_at(caught("Error")),
            "cause": sfn.JsonPath.string_at(caught("Cause")),
        }
        summary = sfn.Pass(
            self,
            f"{name}Failed",
            state_name=f"{name} failed",
            parameters={StateKey.FAILURE.value: failure} if failure_replaces_state else failure,
            result_path=sfn.JsonPath.entire_payload if failure_replaces_state else StateKey.FAILURE.path,
        )
        task.add_catch(summary.next(on_failure), errors=[sfn.Errors.ALL], result_path=caught_path)
        return task

    def _release_lock(self, construct_id: str, *, state_name: str | None = None) -> tasks.DynamoDeleteItem:
        """Delete the deployment's lock item, only while this execution holds it (Step Functions calls DynamoDB)."""
        task = tasks.DynamoDeleteItem(
            self,
            construct_id,
            state_name=state_name,
            table=self._lock_table,
            key={
                LOCK_KEY_ATTRIBUTE: tasks.DynamoAttributeValue.from_string(
                    sfn.JsonPath.string_at(plan_field_path("lock_key"))
                )
            },
            condition_expression="holder = :me",
            expression_attribute_values={
                ":me": tasks.DynamoAttributeValue.from_string(sfn.JsonPath.execution_name)
            },
            # The state stays what the steps made it; DeleteItem's answer says nothing a person needs.
            result_path=sfn.JsonPath.DISCARD,
            task_timeout=sfn.Timeout.duration(DYNAMODB_TASK_TIMEOUT),
        )
        DYNAMODB_TRANSIENT.apply(task)
        return task
