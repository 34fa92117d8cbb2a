"""The failure topic, and Notify's record of the executions it notified."""

import pytest
from aws_cdk.assertions import Capture, Match

from functions.shared.notification import NOTIFIED_EXPIRY_ATTRIBUTE, NOTIFIED_KEY_ATTRIBUTE

ALARMS = {"Service": "cloudwatch.amazonaws.com"}


def topic_policy(synthesized) -> list[dict]:
    _, policy = synthesized.only(
        "AWS::SNS::TopicPolicy", {"Topics": [{"Ref": synthesized.output_ref("FailureTopicArn")}]}
    )
    return synthesized.render(policy["Properties"]["PolicyDocument"]["Statement"])


def key_id(synthesized) -> str:
    key = Capture()
    synthesized.has(
        synthesized.output_ref("FailureTopicArn"), "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}}
    )
    return key.as_string()


def key_policy(synthesized) -> list[dict]:
    statements = Capture()
    synthesized.has(key_id(synthesized), "AWS::KMS::Key", {"KeyPolicy": {"Statement": statements}})
    return synthesized.render(statements.as_array())


def test_the_topic_is_encrypted_with_a_rotated_key_and_tls_only(synthesized):
    synthesized.has(key_id(synthesized), "AWS::KMS::Key", {"EnableKeyRotation": True})
    synthesized.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": synthesized.output_ref("FailureTopicArn")}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_every_notify_email_is_subscribed(synthesized):
    emails = synthesized.context["notifyEmails"]
    synthesized.template.resource_count_is("AWS::SNS::Subscription", len(emails))
    for email in emails:
        synthesized.template.has_resource_properties(
            "AWS::SNS::Subscription",
            Match.exact(
                {"Protocol": "email", "TopicArn": {"Ref": synthesized.output_ref("FailureTopicArn")}, "Endpoint": email}
            ),
        )


def test_email_subscriptions_can_be_turned_off_without_removing_the_addresses(without_alarms):
    assert without_alarms.context["notifyEmails"]
    without_alarms.template.resource_count_is("AWS::SNS::Subscription", 0)


def test_this_accounts_alarms_may_publish_to_the_encrypted_topic(synthesized):
    topic_id = synthesized.output_ref("FailureTopicArn")
    assert {
        "Action": "sns:Publish",
        "Condition": {"StringEquals": {"aws:SourceAccount": "<AWS::AccountId>"}},
        "Effect": "Allow",
        "Principal": ALARMS,
        "Resource": f"<{topic_id}>",
        "Sid": "1",
    } in topic_policy(synthesized)
    # In a key policy "*" is the key itself.
    assert {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Effect": "Allow",
        "Principal": ALARMS,
        "Resource": "*",
    } in key_policy(synthesized)


@pytest.mark.parametrize("policy", [topic_policy, key_policy])
def test_without_alarms_cloudwatch_gets_no_access_to_the_topic(without_alarms, policy):
    assert ALARMS not in [statement.get("Principal") for statement in policy(without_alarms)]


def test_notifys_record_of_the_executions_it_notified_is_keyed_and_expires_as_powertools_writes_it(
    synthesized, notified_table_id
):
    table_id = notified_table_id
    synthesized.has(
        table_id,
        "AWS::DynamoDB::Table",
        {
            # powertools' idempotency records (functions/notify/app.py): the key, and the TTL it sets.
            "KeySchema": Match.exact([{"AttributeName": NOTIFIED_KEY_ATTRIBUTE, "KeyType": "HASH"}]),
            "AttributeDefinitions": Match.exact([{"AttributeName": NOTIFIED_KEY_ATTRIBUTE, "AttributeType": "S"}]),
            "TimeToLiveSpecification": Match.exact({"AttributeName": NOTIFIED_EXPIRY_ATTRIBUTE, "Enabled": True}),
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": Match.exact({"PointInTimeRecoveryEnabled": True}),
            "SSESpecification": Match.exact({"SSEEnabled": True}),
        },
    )
    synthesized.has(synthesized.function_id("functions.notify.app.handler"), "AWS::Lambda::Function",
                    {"Environment": {"Variables": Match.object_like({"NOTIFIED_TABLE": {"Ref": table_id}})}})
