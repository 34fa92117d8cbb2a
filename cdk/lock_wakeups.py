"""Wake-ups of the executions waiting for a deployment's lock (functions/shared/locking.py).

A waiter sleeps in WaitForLock with its task token in the lock's item. Every removal of a lock item reaches the
waker through the table's stream (only REMOVE records pass the event source's filter), and the waker sends
success to the longest-waiting execution still waiting; it also delivers what a ship left to tell the deferred
executions it carried, or, with nobody waiting, wakes a deferred one to ship (functions/shared/deferred_ships.py).
Stream delivery is at least once and may lag; a wake-up that never comes costs a waiter
one backoff (WaitForLock's timeout), a deferred execution its wait (DeferShip's timeout), never the lock.
"""

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import WAKE_WAITERS, PipelineFunctions, zip_function
from cdk.nag import suppress

# A release wakes its waiter in about a second; a record that keeps failing is dropped after this, leaving its
# waiters to their timeouts.
STREAM_RETRY_ATTEMPTS = 3
STREAM_MAX_RECORD_AGE = Duration.minutes(5)


class LockWakeups(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        pipeline: sfn.IStateMachine,
        functions: PipelineFunctions,
        lock_table: dynamodb.ITable,
    ):
        super().__init__(scope, construct_id)
        self.function = zip_function(
            self, WAKE_WAITERS, {"LOCK_TABLE": lock_table.table_name}, settings=settings, layer=functions.powertools
        )
        self.function.add_event_source(
            event_sources.DynamoEventSource(
                lock_table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=10,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                max_record_age=STREAM_MAX_RECORD_AGE,
                filters=[lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("REMOVE")})],
            )
        )
        # Waiters that remain go back into the lock's item; the one woken is sent success, nothing else. The
        # deployment's ships item is read for what to tell deferred executions, and what was told removed.
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:UpdateItem", "dynamodb:GetItem"], resources=[lock_table.table_arn])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=[pipeline.state_machine_arn])
        )
        suppress(
            self.function.role,
            "IAM5",
            "Lambda's event source mapping for a DynamoDB stream needs dynamodb:ListStreams, which supports no "
            "resource-level permissions; the stream's own actions are granted on this table's stream only.",
            ["Resource::*"],
        )
