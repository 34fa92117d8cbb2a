"""The failure topic: Notify publishes there, alarms too; operators subscribe by email. And Notify's record of the
executions it notified, so that each failure is notified once."""

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from cdk.config import StackSettings
from cdk.storage import expiring_table
from functions.shared.notification import NOTIFIED_EXPIRY_ATTRIBUTE, NOTIFIED_KEY_ATTRIBUTE


class FailureNotifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, settings: StackSettings):
        super().__init__(scope, construct_id)

        # A customer managed key rather than aws/sns: AWS services that publish alarms to a topic need a key
        # policy grant, which the AWS managed key cannot carry.
        self.key = kms.Key(
            self, "TopicKey", description="Encrypts the astro-dag-deploy failure topic", enable_key_rotation=True
        )
        self.topic = sns.Topic(
            self,
            "FailureTopic",
            display_name="astro-dag-deploy failures",
            enforce_ssl=True,
            master_key=self.key,
        )
        if settings.email_notifications:
            for email in settings.notify_emails:
                self.topic.add_subscription(subscriptions.EmailSubscription(email))
        # One item per execution notified (functions/notify/app.py), removed by TTL once no recovery can notify it
        # again: deleting the table with the stack loses nothing that matters later.
        self.notified_table = expiring_table(self, "NotifiedExecutions", NOTIFIED_KEY_ATTRIBUTE,
                                             NOTIFIED_EXPIRY_ATTRIBUTE)

    def allow_alarms(self) -> None:
        """Let CloudWatch alarms of this account publish to the encrypted topic."""
        alarms = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                principals=[alarms],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        # The key encrypts only this topic, and SNS uses it only for publishers the topic policy above admits.
        self.key.grant(alarms, "kms:Decrypt", "kms:GenerateDataKey*")
