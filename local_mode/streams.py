"""DynamoDB Streams' part in the local mode: the template's event source mappings, polled as Lambda polls them.

moto records each table's stream, but does not run Lambda's pollers: its own event source mappings would invoke
the function inside the very write that made the record. Here a thread reads each mapped stream from where the
mapping starts, keeps the records its filters pass, and invokes the function with them in batches (the event Lambda
sends: `{"Records": [...]}`, each record with its `eventSourceARN`). A batch that fails is retried as many times as
the mapping says, then dropped, as Lambda drops it without an on-failure destination.
"""

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config

from local_mode.events import matches

POLL_SECONDS = 0.1

logger = logging.getLogger(__name__)


@dataclass
class StreamMapping:
    """An AWS::Lambda::EventSourceMapping of a DynamoDB stream."""

    function_arn: str
    stream_arn: str
    starting_position: str  # LATEST or TRIM_HORIZON
    batch_size: int = 100
    # Without MaximumRetryAttempts Lambda retries until the record expires; the local mode keeps no expiry and
    # retries such a batch twice.
    retry_attempts: int = -1
    filters: list[dict] = field(default_factory=list)  # patterns; a record passes if any matches (or none is set)
    iterators: dict[str, str] = field(default_factory=dict)  # shard ID -> next iterator

    @classmethod
    def from_properties(cls, properties: dict) -> "StreamMapping":
        filters = [json.loads(entry["Pattern"]) for entry in properties.get("FilterCriteria", {}).get("Filters", [])]
        return cls(
            function_arn=properties["FunctionName"],
            stream_arn=properties["EventSourceArn"],
            starting_position=properties.get("StartingPosition", "LATEST"),
            batch_size=int(properties.get("BatchSize", 100)),
            retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
            filters=filters,
        )

    def passes(self, record: dict) -> bool:
        return not self.filters or any(matches(pattern, record) for pattern in self.filters)


def streams_client() -> Any:
    """A DynamoDB Streams client of the embedded AWS. botocore sends Streams calls to account-based endpoints
    (<account>.streams-ddb...), which moto does not route: this one uses the regional endpoint."""
    return boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))


def lambda_record(record: dict, stream_arn: str) -> dict:
    """A record as Lambda hands it to the function: JSON, the creation time in epoch seconds, its stream named."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": dynamodb, "eventSourceARN": stream_arn}


@dataclass
class StreamPollers:
    """Polls every mapped stream and invokes the mappings' functions with what passes their filters."""

    streams: Any  # a dynamodbstreams client
    invoke: Callable[[str, dict], Any]
    mappings: list[StreamMapping] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    # While set, records are read and lost instead of delivered (and kept here): a record past its retries, a
    # mapping disabled, a poller that lags.
    losing: bool = False
    lost: list[dict] = field(default_factory=list)
    # While set, each batch is delivered twice: Lambda delivers a stream's records at least once (a batch whose
    # invocation timed out after doing its work comes again).
    duplicating: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for mapping in self.mappings:
            shards = self.streams.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]["Shards"]
            for shard in shards:
                mapping.iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=mapping.stream_arn, ShardId=shard["ShardId"],
                    ShardIteratorType=mapping.starting_position,
                )["ShardIterator"]
        self._thread = threading.Thread(target=self._poll, name="local DynamoDB Streams", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            for mapping in self.mappings:
                try:
                    self._deliver(mapping)
                except Exception:  # noqa: BLE001 -- a poller that dies silently would hide every later record
                    logger.exception("local DynamoDB Streams: polling %s failed", mapping.stream_arn)

    def _deliver(self, mapping: StreamMapping) -> None:
        for shard, iterator in list(mapping.iterators.items()):
            answer = self.streams.get_records(ShardIterator=iterator)
            mapping.iterators[shard] = answer["NextShardIterator"]
            records = [lambda_record(record, mapping.stream_arn) for record in answer["Records"]]
            passed = [record for record in records if mapping.passes(record)]
            if self.losing:
                self.lost.extend(passed)
                continue
            for start in range(0, len(passed), mapping.batch_size):
                batch = {"Records": passed[start:start + mapping.batch_size]}
                for _ in range(2 if self.duplicating else 1):
                    self._invoke(mapping, batch)

    def _invoke(self, mapping: StreamMapping, event: dict) -> None:
        attempts = 1 + (mapping.retry_attempts if mapping.retry_attempts >= 0 else 2)
        for attempt in range(1, attempts + 1):
            try:
                self.invoke(mapping.function_arn, event)
                return
            except Exception:  # noqa: BLE001 -- Lambda retries a failed batch, then drops it
                logger.exception("local DynamoDB Streams: %s failed (attempt %d of %d)", mapping.function_arn,
                                 attempt, attempts)
        self.dropped.append(event)
