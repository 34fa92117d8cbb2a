"""The status function behind GET /deployments/{executionName} and GET /targets/{workspace}/{deployment}: it reads
this state machine's executions and what is live (manifests/* in the DAG bucket), nothing else.

Not one of the pipeline's functions: those exist before the state machine, which invokes them; this one needs the
machine's ARN.
"""

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.config import StackSettings
from cdk.functions import ZipStep, manifests_scope, zip_function
from cdk.nag import resource_finding, suppress

STATUS = ZipStep("status", "Status", 256, Duration.seconds(30),
                 purpose="status API (GET /deployments/{executionName}, GET /targets/{workspace}/{deployment})")
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
        bucket: s3.IBucket,
    ):
        super().__init__(scope, construct_id)

        self.function = zip_function(
            self,
            STATUS,
            {"STATE_MACHINE_ARN": state_machine.state_machine_arn, "DAG_BUCKET": bucket.bucket_name},
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
        # What is live: the deployment's manifests, listed (unconditioned, so that a missing one reads as 404).
        manifests = manifests_scope(bucket)
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]))
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[manifests.arn]))
        suppress(self.function.role, "IAM5", manifests.reason, [manifests.finding])
