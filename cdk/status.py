"""The status function behind GET /deployments/{executionName}: it reads this state machine's executions, nothing
else.

Not one of the pipeline's functions: those exist before the state machine, which invokes them; this one needs the
machine's ARN.
"""

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import ZipStep, zip_function
from cdk.nag import resource_finding, suppress

STATUS = ZipStep("status", "Status", 256, Duration.seconds(30), purpose="status API (GET /deployments/{executionName})")
# What status.describing calls: the execution's description, then its history.
READ_ACTIONS = ("states:DescribeExecution", "states:GetExecutionHistory")


class DeploymentStatus(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        state_machine: sfn.IStateMachine,
        powertools: lambda_.ILayerVersion,
    ):
        super().__init__(scope, construct_id)

        self.function = zip_function(
            self,
            STATUS,
            {"STATE_MACHINE_ARN": state_machine.state_machine_arn},
            settings=settings,
            layer=powertools,
        )
        grant = state_machine.grant_execution(self.function, *READ_ACTIONS)
        suppress(
            self.function.role,
            "IAM5",
            "Execution names exist only at run time (each request names its own execution): the grant covers "
            "execution:<machine name>:*, the executions of this state machine and of no other.",
            [resource_finding(self, resource) for resource in grant.principal_statement.resources],
        )
