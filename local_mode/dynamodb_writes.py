"""DynamoDB's atomic item writes, on moto.

AWS (DynamoDB's condition expressions): a write of an item (PutItem, UpdateItem, DeleteItem, a transaction's
writes) checks its condition and makes its change as one step; of two conditional writes racing for a free lock,
one succeeds and the other fails its condition.

What moto 5.2 does: it checks the condition, then changes the item, in Python, with nothing between two threads
(tests/local/test_dynamodb_writes.py races 30 of them: more than one wins). In the local mode executions run at
the same time as on AWS, and the lock's wake-ups make their conditional writes meet: in a burst of 50 pushes, two
executions took one deployment's lock at once and two CLI runs overlapped. `atomic_item_writes()` makes each of
moto's item reads and writes one step for the block, as on AWS; moto's own concurrent reads and writes of one item
also fail now and then without it. A request is one step with its answer: moto's backend hands the handler the
live item, which the handler serializes afterwards, and a write of that item in between failed a burst's reads
("dictionary changed size during iteration").

Transactions take time on AWS, and their items are taken meanwhile (DynamoDB's transaction conflict handling): a
PutItem, UpdateItem or DeleteItem of an item an ongoing TransactWriteItems includes is rejected with
TransactionConflictException, and another TransactWriteItems including it is canceled, its reason
TransactionConflict. Neither write is applied; botocore does not retry either. moto applies a transaction at once
and rejects nothing. With `transaction_seconds`, each TransactWriteItems keeps its items for that long before it
answers (applied first, then held: its caller cannot tell), and conflicting writes meanwhile fail as on AWS.
"""

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import DynamodbException, TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

# Reads too: a scan or a stream record iterating an item while another thread writes it fails in moto
# ("dictionary changed size during iteration").
ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "transact_write_items", "scan", "query")


def _serialized(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    @functools.wraps(method)
    def one_step(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return one_step


ONGOING_MESSAGE = "Transaction is ongoing for the item"


class TransactionConflictException(DynamodbException):
    """What AWS answers a single-item write of an item an ongoing transaction includes."""

    error_type = "com.amazonaws.dynamodb.v20120810#TransactionConflictException"

    def __init__(self) -> None:
        super().__init__(self.error_type, message=ONGOING_MESSAGE)


ItemKey = tuple[str, str]  # table name, the item's key attributes as sorted JSON


def _item_key(backend: DynamoDBBackend, table_name: str, attributes: Mapping[str, Any]) -> ItemKey:
    """The item's identity, from its key or from the whole item (a Put's)."""
    table = backend.get_table(table_name)
    names = [name for name in (table.hash_key_attr, table.range_key_attr) if name]
    return table_name, json.dumps({name: attributes[name] for name in names}, sort_keys=True)


def _transaction_keys(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[ItemKey]:
    keys = []
    for entry in transact_items:
        [(kind, operation)] = entry.items()
        keys.append(_item_key(backend, operation["TableName"], operation["Item"] if kind == "Put" else operation["Key"]))
    return keys


class OngoingTransactions:
    """The items of the transactions that have not answered yet; the writes they reject (called under the lock)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._items: set[ItemKey] = set()
        self._held = threading.local()  # the items this thread's transaction holds until it answers

    def refuse_single_write(self, backend: DynamoDBBackend, table_name: str, attributes: Mapping[str, Any]) -> None:
        if _item_key(backend, table_name, attributes) in self._items:
            raise TransactionConflictException()

    def apply(self, backend: DynamoDBBackend, transact_items: list[dict[str, Any]], write: Callable[[], Any]) -> Any:
        keys = _transaction_keys(backend, transact_items)
        if any(key in self._items for key in keys):
            raise TransactionCanceledException(
                [("TransactionConflict", ONGOING_MESSAGE, None) if key in self._items else (None, None, None)
                 for key in keys])
        result = write()
        held = getattr(self._held, "keys", None)
        if held is not None:  # a request's (`answer`), not a direct call of the backend
            self._items.update(keys)
            held.extend(keys)
        return result

    def answer(self, respond: Callable[[], Any]) -> Any:
        """Answer a request; a transaction that applied holds its items for `seconds` first, outside the lock."""
        self._held.keys = held = []
        try:
            return respond()
        finally:
            self._held.keys = None
            if held:
                time.sleep(self.seconds)
                self._items.difference_update(held)


def _with_conflicts(ongoing: OngoingTransactions) -> dict[str, Callable[..., Any]]:
    """DynamoDBBackend's write operations, refusing what an ongoing transaction holds."""
    put, update, delete, transact = (DynamoDBBackend.put_item, DynamoDBBackend.update_item,
                                     DynamoDBBackend.delete_item, DynamoDBBackend.transact_write_items)

    def put_item(self: DynamoDBBackend, table_name: str, item_attrs: dict, *args: Any, **kwargs: Any) -> Any:
        ongoing.refuse_single_write(self, table_name, item_attrs)
        return put(self, table_name, item_attrs, *args, **kwargs)

    def update_item(self: DynamoDBBackend, table_name: str, key: dict, *args: Any, **kwargs: Any) -> Any:
        ongoing.refuse_single_write(self, table_name, key)
        return update(self, table_name, key, *args, **kwargs)

    def delete_item(self: DynamoDBBackend, table_name: str, key: dict, *args: Any, **kwargs: Any) -> Any:
        ongoing.refuse_single_write(self, table_name, key)
        return delete(self, table_name, key, *args, **kwargs)

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> Any:
        return ongoing.apply(self, transact_items, lambda: transact(self, transact_items))

    return {"put_item": put_item, "update_item": update_item, "delete_item": delete_item,
            "transact_write_items": transact_write_items}


@contextmanager
def atomic_item_writes(transaction_seconds: float = 0.0) -> Iterator[None]:
    """Each DynamoDB request one step with its answer; with `transaction_seconds`, transactions that take that long,
    and the writes they conflict with refused."""
    lock = threading.RLock()
    ongoing = OngoingTransactions(transaction_seconds)
    operations = {name: getattr(DynamoDBBackend, name) for name in ITEM_OPERATIONS}
    if transaction_seconds:
        operations |= _with_conflicts(ongoing)
    serialized_call = _serialized(DynamoHandler.call_action, lock)

    def call_action(handler: DynamoHandler) -> Any:
        return ongoing.answer(lambda: serialized_call(handler))

    with ExitStack() as patches:
        # Each request with its answer; the backend's operations too, for callers that reach it directly.
        patches.enter_context(mock.patch.object(DynamoHandler, "call_action", call_action))
        for name, operation in operations.items():
            patches.enter_context(mock.patch.object(DynamoDBBackend, name, _serialized(operation, lock)))
        yield
