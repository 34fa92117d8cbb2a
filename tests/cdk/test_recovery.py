"""Stopped and timed-out executions, and those failed with a terminal error: EventBridge hands them to the Sweeper, which starts their recovery (a state
machine that waits for the invocation in flight); the Sweeper also runs on a schedule; what neither can deliver
waits in a DLQ."""

import json

import pytest
from aws_cdk.assertions import Capture, Match

from cdk.config import StackSettings
from cdk.recovery import RECOVERY_MARGIN, WAIT_STATE
from cdk.time_budget import recovery_worst_case

SWEEPER = "functions.sweeper.app.handler"


# What each status rule matches besides this machine's status-change events.
STATUS_RULES = {
    "RecoveryRule": {"status": ["ABORTED", "TIMED_OUT"]},
    "RecoveryTerminalErrorRule": {"status": ["FAILED"], "error": ["States.DataLimitExceeded", "States.Runtime"]},
}


@pytest.fixture(scope="module")
def rule_ids(synthesized) -> dict[str, str]:
    """The status rules' logical ids, by their prefix (the construct's path)."""
    synthesized.template.resource_count_is("AWS::Events::Rule", 3)
    found = synthesized.resources("AWS::Events::Rule", {"EventPattern": Match.any_value()})
    return {prefix: next(rule_id for rule_id in found if rule_id.startswith(prefix)) for prefix in STATUS_RULES}


@pytest.fixture(scope="module")
def recovery_definition(synthesized) -> dict:
    machine = synthesized.resources("AWS::StepFunctions::StateMachine")[
        synthesized.output_ref("RecoveryStateMachineArn")]
    return json.loads(synthesized.render(machine["Properties"]["DefinitionString"]))


@pytest.fixture(scope="module")
def queue_id(synthesized) -> str:
    return synthesized.output_ref("RecoveryDeadLettersUrl")


@pytest.mark.parametrize("prefix", STATUS_RULES)
def test_the_rules_match_only_this_machines_executions_that_skip_their_failure_path(synthesized, rule_ids, prefix):
    synthesized.has(
        rule_ids[prefix],
        "AWS::Events::Rule",
        {
            "State": "ENABLED",
            "EventPattern": Match.exact(
                {
                    "source": ["aws.states"],
                    "detail-type": ["Step Functions Execution Status Change"],
                    "detail": {
                        **STATUS_RULES[prefix],
                        "stateMachineArn": [{"Ref": synthesized.output_ref("StateMachineArn")}],
                    },
                }
            ),
        },
    )


@pytest.mark.parametrize("prefix", STATUS_RULES)
def test_the_rules_invoke_the_sweeper_with_retries_then_dead_letter_the_event(synthesized, rule_ids, queue_id, prefix):
    rule_id = rule_ids[prefix]
    function_id = synthesized.function_id(SWEEPER)
    retries = Capture()
    synthesized.has(
        rule_id,
        "AWS::Events::Rule",
        {
            "Targets": [
                {
                    "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                    "RetryPolicy": {"MaximumRetryAttempts": retries},
                    "DeadLetterConfig": Match.exact({"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}),
                }
            ]
        },
    )
    assert retries.as_number() > 0
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Permission",
        Match.exact(
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
            }
        ),
    )
    # The two status rules' and the sweep schedule's.
    assert len(synthesized.resources("AWS::Lambda::Permission", {"Principal": "events.amazonaws.com"})) == 3


def test_the_sweeper_runs_on_a_schedule(synthesized):
    minutes = synthesized.context.get("recoverySweepMinutes", 10)
    synthesized.template.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": f"rate({minutes} minutes)", "State": "ENABLED",
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [synthesized.function_id(SWEEPER), "Arn"]}})]})


def test_the_recovery_waits_for_the_invocation_in_flight_in_a_state_the_console_shows(recovery_definition):
    states = recovery_definition["States"]
    assert recovery_definition["StartAt"] == WAIT_STATE
    assert states[WAIT_STATE] == {"Type": "Wait", "TimestampPath": "$.recovery.in_flight_until", "Next": "Planned?"}
    # Then restore (fenced), re-ship when Deploy may have shipped, release the lock if still held, notify once.
    assert states["Planned?"]["Choices"][0]["Next"] == "Recover" and states["Planned?"]["Default"] == "Notify"
    assert states["Recover"]["Next"] == "Re-ship needed?"
    assert states["Re-ship needed?"]["Choices"][0]["Next"] == "Re-ship restored bundle"
    assert states["Re-ship restored bundle"]["Parameters"]["allow_empty_deployment"] is True
    # What the restored prefix holds is not the stopped execution's plan: nothing is recorded as live from it.
    assert states["Re-ship restored bundle"]["Parameters"]["record_live"] is False
    assert states["Re-ship restored bundle"]["Next"] == "Release lock"
    assert states["Release lock"]["Parameters"]["ConditionExpression"] == "holder = :me"
    assert states["Release lock"]["Parameters"]["ExpressionAttributeValues"][":me"] == {"S.$": "$.execution"}
    assert states["Release lock"]["Next"] == "Notify" and states["Notify"]["Next"] == "Recovered"


def test_the_recovery_machine_times_out_only_after_its_worst_case(synthesized, recovery_definition):
    settings = StackSettings.from_context(synthesized.context)
    worst_case = sum(phase.seconds for phase in recovery_worst_case(settings))
    assert recovery_definition["TimeoutSeconds"] >= worst_case + RECOVERY_MARGIN.to_seconds()


def test_a_recovery_start_that_keeps_failing_lands_in_the_same_queue(synthesized, queue_id):
    # EventBridge's invocation is asynchronous: Lambda retries a failed start, then dead-letters it.
    function_id = synthesized.function_id(SWEEPER)
    synthesized.has(
        function_id,
        "AWS::Lambda::Function",
        {"DeadLetterConfig": Match.exact({"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}})},
    )
    max_age = Capture()
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": function_id}, "MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": max_age},
    )
    assert max_age.as_number() >= 3600


def test_the_dead_letter_queue_keeps_events_two_weeks_encrypted_tls_only_and_writable_only_by_the_rules(
    synthesized, rule_ids, queue_id
):
    synthesized.has(queue_id, "AWS::SQS::Queue", {"MessageRetentionPeriod": 14 * 24 * 3600})
    _, policy = synthesized.only("AWS::SQS::QueuePolicy", {"Queues": [{"Ref": queue_id}]})
    statements = synthesized.render(policy["Properties"]["PolicyDocument"]["Statement"])
    assert any(
        statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in statements
    )
    allowed = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert {statement["Principal"]["Service"] for statement in allowed} == {"events.amazonaws.com"}
    assert {statement["Action"] for statement in allowed} == {"sqs:SendMessage"}
    assert sorted(statement["Condition"]["ArnEquals"]["aws:SourceArn"] for statement in allowed) == sorted(
        f"<{rule_id}.Arn>" for rule_id in rule_ids.values())


def test_every_queue_is_encrypted(synthesized):
    # checkov's CKV_AWS_27 recognizes only KMS keys (.checkov.yaml): SSE-SQS is checked here.
    queues = synthesized.resources("AWS::SQS::Queue")
    encrypted = {
        **synthesized.resources("AWS::SQS::Queue", {"SqsManagedSseEnabled": True}),
        **synthesized.resources("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()}),
    }
    assert set(encrypted) == set(queues)
