"""Everything one `cdk deploy` provisions."""

from aws_cdk import Aws, CfnOutput, Stack
from constructs import Construct

from cdk.api import DeploymentsApi
from cdk.config import StackSettings
from cdk.functions import PipelineFunctions
from cdk.lock_wakeups import LockWakeups
from cdk.monitoring import PipelineMonitoring
from cdk.notifications import FailureNotifications
from cdk.recovery import ExecutionRecovery
from cdk.state_machine import DeployStateMachine
from cdk.status import DeploymentStatus
from cdk.storage import DagStorage
from cdk.time_budget import check_time_budget
from cdk.zip_assets import warn_without_bytecode


class AstroDagDeployStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings):
        # A run too long for the execution timeout would end TIMED_OUT, outside the machine's failure path.
        check_time_budget(settings)
        super().__init__(scope, construct_id, description="Deploys Airflow DAGs to Astronomer (astro-dag-deploy)")

        warn_without_bytecode(self)
        self.storage = DagStorage(self, "Storage", settings)
        self.notifications = FailureNotifications(self, "Notifications", settings)
        self.functions = PipelineFunctions(
            self, "Functions", settings, self.storage.bucket, self.storage.lock_table, self.notifications.topic,
            self.notifications.notified_table,
        )
        self.pipeline = DeployStateMachine(self, "Pipeline", settings, self.functions, self.storage.lock_table)
        self.lock_wakeups = LockWakeups(
            self, "LockWakeups", settings, self.pipeline.state_machine, self.functions, self.storage.lock_table
        )
        self.recovery = ExecutionRecovery(
            self,
            "Recovery",
            settings,
            self.pipeline.state_machine,
            self.functions,
            self.storage.lock_table,
            self.functions.recovery_dead_letters,
        )
        self.status = DeploymentStatus(
            self, "Status", settings, self.pipeline.state_machine, self.functions.powertools, self.storage.bucket
        )
        self.api = DeploymentsApi(self, "Api", settings, self.pipeline.state_machine, self.status.function)
        self.monitoring = PipelineMonitoring(
            self,
            "Monitoring",
            settings,
            self.pipeline.state_machine,
            self.recovery.state_machine,
            self.api.api,
            self.notifications,
            self.functions.recovery_dead_letters,
        )

        # Operators and CI read these; the local mode finds the resources' logical IDs through their Refs.
        CfnOutput(self, "DeploymentsUrl", value=self.api.api.url_for_path(self.api.start_method.resource.path))
        CfnOutput(
            self,
            "DeploymentStatusUrl",
            value=self.api.api.url_for_path(self.api.status_method.resource.path),
            description="GET it with {executionName} replaced by the name POST answered (its statusUrl)",
        )
        CfnOutput(
            self,
            "TargetsUrl",
            value=self.api.api.url_for_path(self.api.targets_method.resource.path),
            description="GET it with {workspace} and {deployment} replaced: what is live there, repo by repo",
        )
        CfnOutput(self, "StateMachineArn", value=self.pipeline.state_machine.state_machine_arn)
        CfnOutput(
            self,
            "RecoveryStateMachineArn",
            value=self.recovery.state_machine.state_machine_arn,
            description="Recoveries of stopped and timed-out executions, each named after the execution it recovers",
        )
        CfnOutput(self, "DagBucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "LockTableName", value=self.storage.lock_table.table_name)
        CfnOutput(self, "FailureTopicArn", value=self.notifications.topic.topic_arn)
        CfnOutput(self, "AstroTokenSecretArn", value=self.functions.token_secret.secret_arn)
        CfnOutput(self, "RecoveryDeadLettersUrl", value=self.functions.recovery_dead_letters.queue_url)
        # What a source bucket's policy (and its key's policy) in another account names: README, Source buckets.
        CfnOutput(self, "ParseRoleArn", value=self.functions.parse.role.role_arn)
        CfnOutput(self, "UploadRoleArn", value=self.functions.upload.role.role_arn)
        CfnOutput(
            self,
            "DashboardUrl",
            value=f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards/dashboard/{settings.stack_name}",
        )
