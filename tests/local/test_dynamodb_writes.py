"""The local mode's model of DynamoDB's atomic conditional writes (local_mode/dynamodb_writes.py).

AWS: a conditional write checks its condition and changes the item in one step; of writes racing for the same free
item, exactly one succeeds. moto alone lets several through now and then. And a transaction holds its items until
it answers: a write of one meanwhile is refused (TransactionConflictException, or a transaction canceled for
TransactionConflict). moto alone refuses nothing.
"""

import threading
import time
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb import models

from local_mode.dynamodb_writes import atomic_item_writes

RACERS = 10
ROUNDS = 5


def winners_per_round(table: str) -> list[int]:
    """Rounds of RACERS threads taking one free item each (a conditional update), started together."""
    clients = [boto3.client("dynamodb", region_name="us-east-1") for _ in range(RACERS)]
    winners = []
    for round_number in range(ROUNDS):
        start, won = threading.Barrier(RACERS), []

        def race(racer: int, key: str = f"lock-{round_number}") -> None:
            start.wait()
            try:
                clients[racer].update_item(
                    TableName=table, Key={"lock_key": {"S": key}}, UpdateExpression="SET holder = :me",
                    ConditionExpression="attribute_not_exists(holder)", ExpressionAttributeValues={":me": {"S": str(racer)}},
                )
                won.append(racer)
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

        threads = [threading.Thread(target=race, args=(racer,)) for racer in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners.append(len(won))
    return winners


@pytest.fixture
def slow_conditions():
    """moto's window between checking a condition and writing the item, widened from a thread switch to 20 ms."""
    parser = models.create_condition_expression_parser

    def slow_parser(*args, **kwargs):
        condition = parser(*args, **kwargs).parse()
        checked = condition.expr

        def expr(item):
            passed = checked(item)
            time.sleep(0.02)
            return passed

        condition.expr = expr
        return mock.Mock(parse=lambda: condition)

    with mock.patch.object(models, "create_condition_expression_parser", slow_parser):
        yield


def create_lock_table() -> str:
    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="locks", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "lock_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lock_key", "KeyType": "HASH"}],
    )
    return "locks"


def test_moto_alone_lets_racing_conditional_writes_all_win(slow_conditions):
    with mock_aws():
        assert all(winners > 1 for winners in winners_per_round(create_lock_table()))


def test_of_conditional_writes_racing_for_one_item_exactly_one_wins(slow_conditions):
    with mock_aws(), atomic_item_writes():
        assert winners_per_round(create_lock_table()) == [1] * ROUNDS


def values_read_while_written() -> list[str]:
    """Rounds of a GetItem whose answer moto builds slowly (50 ms) from the item, an UpdateItem of that item 10 ms
    into it: the value each read answered."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table, answered = create_lock_table(), []
    describe = models.Item.describe_attrs

    def slow_describe(item, *args, **kwargs):
        time.sleep(0.05)
        return describe(item, *args, **kwargs)

    with mock.patch.object(models.Item, "describe_attrs", slow_describe):
        for round_number in range(ROUNDS):
            key = {"lock_key": {"S": f"lock-{round_number}"}}
            dynamodb.put_item(TableName=table, Item={**key, "n": {"S": "before"}})
            reader = threading.Thread(target=lambda key=key: answered.append(
                dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"]["S"]))
            reader.start()
            time.sleep(0.01)
            dynamodb.update_item(TableName=table, Key=key, UpdateExpression="SET n = :after",
                                 ExpressionAttributeValues={":after": {"S": "after"}})
            reader.join()
    return answered


def test_moto_alone_answers_a_read_with_a_write_made_after_it():
    with mock_aws():
        assert values_read_while_written() == ["after"] * ROUNDS


def test_a_read_answers_the_item_as_it_was_when_read():
    with mock_aws(), atomic_item_writes():
        assert values_read_while_written() == ["before"] * ROUNDS


TRANSACTION_SECONDS = 0.3


def writes_during_a_transaction() -> dict[str, str]:
    """A TransactWriteItems of items a and b; 50 ms into it, an UpdateItem of a, a TransactWriteItems of b and c,
    and an UpdateItem of d: what each answered (a plain client's: nothing retries), and what a holds in the end."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    table = create_lock_table()

    def key(name: str) -> dict:
        return {"lock_key": {"S": name}}

    def update(name: str, value: str) -> dict:
        return {"TableName": table, "Key": key(name), "UpdateExpression": "SET n = :v",
                "ExpressionAttributeValues": {":v": {"S": value}}}

    def answer(call, **params) -> str:
        try:
            call(**params)
        except ClientError as error:
            reasons = [reason["Code"] for reason in error.response.get("CancellationReasons", [])]
            return error.response["Error"]["Code"] + (f" {reasons}" if reasons else "")
        return "ok"

    transaction = threading.Thread(target=dynamodb.transact_write_items, kwargs={
        "TransactItems": [{"Update": update("a", "transaction")}, {"Update": update("b", "transaction")}]})
    transaction.start()
    time.sleep(0.05)
    answered = {
        "update of a": answer(dynamodb.update_item, **update("a", "single")),
        "transaction of b and c": answer(dynamodb.transact_write_items,
                                         TransactItems=[{"Update": update("c", "other")}, {"Update": update("b", "other")}]),
        "update of d": answer(dynamodb.update_item, **update("d", "single")),
    }
    transaction.join()
    answered["a, once answered"] = dynamodb.get_item(TableName=table, Key=key("a"))["Item"]["n"]["S"]
    answered["update of a, once answered"] = answer(dynamodb.update_item, **update("a", "after"))
    answered["a"] = dynamodb.get_item(TableName=table, Key=key("a"))["Item"]["n"]["S"]
    answered["c"] = dynamodb.get_item(TableName=table, Key=key("c")).get("Item", {}).get("n", {}).get("S", "-")
    return answered


def test_moto_alone_lets_writes_through_while_a_transaction_is_ongoing(monkeypatch):
    """moto alone, its transaction slowed down as much: nothing is refused."""
    transact = models.DynamoDBBackend.transact_write_items

    def slow_transaction(backend, *args, **kwargs):
        time.sleep(TRANSACTION_SECONDS)
        return transact(backend, *args, **kwargs)

    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items", slow_transaction)
    with mock_aws():
        answered = writes_during_a_transaction()
    assert set(answered[name] for name in ("update of a", "transaction of b and c", "update of d")) == {"ok"}


def test_writes_of_items_an_ongoing_transaction_holds_are_refused_and_not_applied():
    with mock_aws(), atomic_item_writes(transaction_seconds=TRANSACTION_SECONDS):
        answered = writes_during_a_transaction()
    assert answered == {
        "update of a": "TransactionConflictException",
        # The reasons in the order of the items: c was free, b held.
        "transaction of b and c": "TransactionCanceledException ['None', 'TransactionConflict']",
        "update of d": "ok",
        "a, once answered": "transaction",  # the refused update wrote nothing
        "update of a, once answered": "ok",
        "a": "after",
        "c": "-",  # the canceled transaction wrote nothing
    }
