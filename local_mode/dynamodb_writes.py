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
"""

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

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


@contextmanager
def atomic_item_writes() -> Iterator[None]:
    lock = threading.RLock()
    with ExitStack() as patches:
        # Each request with its answer; the backend's operations too, for callers that reach it directly.
        patches.enter_context(mock.patch.object(DynamoHandler, "call_action",
                                                _serialized(DynamoHandler.call_action, lock)))
        for name in ITEM_OPERATIONS:
            patches.enter_context(mock.patch.object(DynamoDBBackend, name,
                                                    _serialized(getattr(DynamoDBBackend, name), lock)))
        yield
