"""The lock's wake-ups: the lock table's stream, the waker's event source, and what it is told."""

from aws_cdk.assertions import Match

WAKE_WAITERS_HANDLER = "functions.wake_waiters.app.handler"


def test_the_lock_table_streams_each_item_as_it_was(synthesized):
    table_id = synthesized.output_ref("LockTableName")
    # The removed item's waiters are in its old image.
    synthesized.has(table_id, "AWS::DynamoDB::Table", {"StreamSpecification": {"StreamViewType": "OLD_IMAGE"}})


def test_the_waker_receives_only_removals_from_the_lock_tables_stream(synthesized):
    table_id = synthesized.output_ref("LockTableName")
    function_id = synthesized.function_id(WAKE_WAITERS_HANDLER)
    _, mapping = synthesized.only(
        "AWS::Lambda::EventSourceMapping", {"FunctionName": {"Ref": function_id}}
    )
    assert mapping["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "EventSourceArn": {"Fn::GetAtt": [table_id, "StreamArn"]},
        "StartingPosition": "LATEST",
        "BatchSize": 10,
        "FilterCriteria": {"Filters": [{"Pattern": '{"eventName":["REMOVE"]}'}]},
        # A record that keeps failing is dropped after a few minutes: its waiters time out into another attempt.
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 300,
    }


def test_the_waker_knows_the_lock_table(synthesized):
    table_id = synthesized.output_ref("LockTableName")
    synthesized.has(
        synthesized.function_id(WAKE_WAITERS_HANDLER),
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"LOCK_TABLE": {"Ref": table_id}})}},
    )
