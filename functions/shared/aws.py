"""boto3 clients, made once per process as Lambda's warm containers reuse them."""

import functools
import random
from datetime import datetime

import boto3
import botocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp

# Enough connections for the widest thread pool a step runs (see MAX_WORKERS).
MAX_WORKERS = 32
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=MAX_WORKERS)
# DynamoDB refuses a write of an item that an ongoing transaction includes (TransactionConflictException) and cancels
# a transaction that meets another (reason TransactionConflict): nothing was written, and botocore retries neither.
# The lock table meets them in a burst: a holder releases the lock in a transaction while newcomers register.
CONFLICT_ATTEMPTS = 8
CONFLICT_BACKOFF_SECONDS = 0.05


def parse_response_timestamp(value: str | int | float) -> datetime:
    """A timestamp of an AWS answer, as botocore's own parser reads it, without dateutil for ISO 8601 strings.

    botocore hands every timestamp to dateutil, some 0.1 ms each: Deploy's listing of 2,000 keys spent about 0.15 s
    parsing `LastModified`, which nothing reads. The ISO 8601 strings of XML and JSON answers (S3's
    `2026-12-07T06:11:55.000Z`) are read by the standard library; anything else (HTTP dates in headers, epoch
    numbers) goes to botocore's parser."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return parse_timestamp(value)


@functools.cache
def _session() -> boto3.session.Session:
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_response_timestamp)
    return boto3.session.Session(botocore_session=core)


def transaction_conflict_delay(response: tuple | None, attempts: int, **_) -> float | None:
    """botocore's needs-retry answer for DynamoDB: a delay (full jitter) before trying a request that a transaction
    conflict refused again, or None (not this handler's to retry)."""
    if response is None or attempts >= CONFLICT_ATTEMPTS:
        return None
    parsed = response[1]
    code = parsed.get("Error", {}).get("Code")
    reasons = {reason.get("Code") for reason in parsed.get("CancellationReasons", [])}
    # A transaction canceled by a condition too is answered as it is: the condition decides.
    conflicted = code == "TransactionConflictException" or (
        code == "TransactionCanceledException" and "TransactionConflict" in reasons
        and "ConditionalCheckFailed" not in reasons)
    return random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempts) if conflicted else None


@functools.cache
def client(service: str):
    made = _session().client(service, config=_CONFIG)
    if service == "dynamodb":
        made.meta.events.register("needs-retry.dynamodb", transaction_conflict_delay)
    return made


def forget_clients() -> None:
    """Make the clients anew at their next use: credentials, region and endpoint are read from the environment
    when a session is made (the local mode and the tests change them)."""
    client.cache_clear()
    _session.cache_clear()
