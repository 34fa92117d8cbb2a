"""boto3 clients, made once per process as Lambda's warm containers reuse them."""

import functools

import boto3
from botocore.config import Config

# Enough connections for the widest thread pool a step runs (see MAX_WORKERS).
MAX_WORKERS = 32
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=MAX_WORKERS)


@functools.cache
def client(service: str):
    return boto3.client(service, config=_CONFIG)
