"""Stopped and timed-out executions: EventBridge hands them to Recover; what neither can deliver waits in a DLQ."""

import pytest

RECOVER = "functions.recover.app.handler"


@pytest.fixture(scope="module")
def rule(synthesized) -> tuple[str, dict]:
    return synthesized.only("AWS::Events::Rule")


@pytest.fixture(scope="module")
def queue_id(synthesized) -> str:
    return synthesized.output_ref("RecoveryDeadLettersUrl")


def test_the_rule_matches_only_this_machines_executions_that_skip_their_failure_path(synthesized, rule):
    rule_id, resource = rule
    properties = resource["Properties"]
    # The local mode finds the rule by this prefix.
    assert rule_id.startswith("RecoveryRule")
    assert properties["State"] == "ENABLED"
    assert properties["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["ABORTED", "TIMED_OUT"],
            "stateMachineArn": [{"Ref": synthesized.output_ref("StateMachineArn")}],
        },
    }


def test_the_rule_invokes_recover_with_retries_then_dead_letters_the_event(synthesized, rule, queue_id):
    rule_id, resource = rule
    (target,) = synthesized.render(resource["Properties"]["Targets"])
    assert target["Arn"] == f"<{synthesized.function_id(RECOVER)}.Arn>"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": f"<{queue_id}.Arn>"}
    (permission,) = [
        permission["Properties"]
        for permission in synthesized.of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert synthesized.render(permission) == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": f"<{synthesized.function_id(RECOVER)}.Arn>",
        "Principal": "events.amazonaws.com",
        "SourceArn": f"<{rule_id}.Arn>",
    }


def test_a_recovery_that_keeps_failing_lands_in_the_same_queue(synthesized, queue_id):
    # EventBridge's invocation is asynchronous: Lambda retries a failed recovery, then dead-letters it.
    function_id = synthesized.function_id(RECOVER)
    function = synthesized.properties(function_id)
    assert synthesized.render(function["DeadLetterConfig"]) == {"TargetArn": f"<{queue_id}.Arn>"}
    (config,) = [
        config["Properties"]
        for config in synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] >= 3600


def test_the_dead_letter_queue_keeps_events_two_weeks_encrypted_tls_only_and_writable_only_by_the_rule(
    synthesized, rule, queue_id
):
    queue = synthesized.properties(queue_id)
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.of_type("AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    statements = [synthesized.render(statement) for statement in policy]
    assert any(
        statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in statements
    )
    (allowed,) = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
    assert allowed["Action"] == "sqs:SendMessage"
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": f"<{rule[0]}.Arn>"}}


def test_every_queue_is_encrypted(synthesized):
    # checkov's CKV_AWS_27 recognizes only KMS keys (.checkov.yaml): SSE-SQS is checked here.
    for queue_id, queue in synthesized.of_type("AWS::SQS::Queue").items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, queue_id
