"""Recovery of executions that never reach their failure path: stopped (ABORTED) or TIMED_OUT.

Step Functions runs no state after a stop or a timeout, so the rollback, the lock release and the notification
happen outside the machine: EventBridge hands the execution's end to the Recover function.
"""

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

ENDED_WITHOUT_FAILURE_PATH = ["ABORTED", "TIMED_OUT"]
# EventBridge retries a delivery Lambda refused (throttling, service errors) for this long, then dead-letters it.
DELIVERY_RETRY_ATTEMPTS = 8
DELIVERY_MAX_EVENT_AGE = Duration.hours(6)


class ExecutionRecovery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        state_machine: sfn.IStateMachine,
        recover: lambda_.IFunction,
        dead_letters: sqs.IQueue,
    ):
        super().__init__(scope, construct_id)

        self.rule = events.Rule(
            self,
            "Rule",
            description="Recovers astro-dag-deploy executions that were stopped or timed out",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ENDED_WITHOUT_FAILURE_PATH,
                    "stateMachineArn": [state_machine.state_machine_arn],
                },
            ),
            targets=[
                targets.LambdaFunction(
                    recover,
                    retry_attempts=DELIVERY_RETRY_ATTEMPTS,
                    max_event_age=DELIVERY_MAX_EVENT_AGE,
                    dead_letter_queue=dead_letters,
                )
            ],
        )
