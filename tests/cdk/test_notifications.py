"""The failure topic."""


ALARMS = {"Service": "cloudwatch.amazonaws.com"}


def topic_policy(synthesized) -> list[dict]:
    topic_id = synthesized.output_ref("FailureTopicArn")
    (policy,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.of_type("AWS::SNS::TopicPolicy").values()
        if policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    return [synthesized.render(statement) for statement in policy]


def key_policy(synthesized) -> list[dict]:
    key_id = synthesized.properties(synthesized.output_ref("FailureTopicArn"))["KmsMasterKeyId"]["Fn::GetAtt"][0]
    return [synthesized.render(statement) for statement in synthesized.properties(key_id)["KeyPolicy"]["Statement"]]


def test_the_topic_is_encrypted_with_a_rotated_key_and_tls_only(synthesized):
    topic_id = synthesized.output_ref("FailureTopicArn")
    key_id = synthesized.properties(topic_id)["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert synthesized.properties(key_id)["EnableKeyRotation"] is True
    policy = topic_policy(synthesized)
    assert any(
        statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in policy
    )


def test_every_notify_email_is_subscribed(synthesized):
    topic_id = synthesized.output_ref("FailureTopicArn")
    subscriptions = [
        subscription["Properties"] for subscription in synthesized.of_type("AWS::SNS::Subscription").values()
    ]
    assert subscriptions == [
        {"Protocol": "email", "TopicArn": {"Ref": topic_id}, "Endpoint": email}
        for email in synthesized.context["notifyEmails"]
    ]


def test_email_subscriptions_can_be_turned_off_without_removing_the_addresses(without_alarms):
    assert without_alarms.context["notifyEmails"]
    assert not without_alarms.of_type("AWS::SNS::Subscription")


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


def test_without_alarms_cloudwatch_gets_no_access_to_the_topic(without_alarms):
    assert ALARMS not in [statement.get("Principal") for statement in topic_policy(without_alarms)]
    assert ALARMS not in [statement.get("Principal") for statement in key_policy(without_alarms)]
