"""Logging, tracing and metrics shared by every step: powertools JSON logs, X-Ray traces, per-step EMF metrics."""

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from functions.shared.paths import is_segment

# Every step's event carries the execution name under this key; logs use it as correlation id.
CORRELATION_ID_PATH = "execution"
UNKNOWN_DIMENSION = "invalid"
# What the X-Ray SDK patches: the steps reach AWS through boto3 and nothing else over the network.
TRACED_MODULES = ("botocore",)


def step_logger(step: str) -> Logger:
    # The service is named in code, not by POWERTOOLS_SERVICE_NAME: the local mode runs every step in one
    # process with one environment.
    return Logger(service=step, utc=True)


def traced(service: str) -> Callable[[Callable], Callable]:
    """The Tracer's `capture_lambda_handler`, with the Tracer made on the first call: making one imports the X-Ray
    SDK (some 40 ms), which the import of a handler module, every cold start's first cost, then does not pay."""

    def decorate(handler: Callable) -> Callable:
        @functools.cache
        def traced_handler() -> Callable:
            return Tracer(service=service, patch_modules=TRACED_MODULES).capture_lambda_handler(handler)

        @functools.wraps(handler)
        def run(event, context):
            return traced_handler()(event, context)

        return run

    return decorate


def dimensions(workspace: object, deployment: object, repo: object) -> dict[str, str]:
    """Metric dimensions; a value a hostile request made up is replaced rather than published."""
    values = {"workspace": workspace, "deployment": deployment, "repo": repo}
    return {
        name: value if isinstance(value, str) and is_segment(value) else UNKNOWN_DIMENSION
        for name, value in values.items()
    }


@contextmanager
def step_metrics(step: str, dims: Mapping[str, str]) -> Iterator[EphemeralMetrics]:
    """Emit `<step>.success` (1/0) and `<step>.time` (ms) for the block, plus whatever it adds.

    One metrics object per invocation (EphemeralMetrics): nothing is shared between concurrent invocations,
    which the local mode runs in one process.
    """
    metrics = EphemeralMetrics()
    for name, value in dims.items():
        metrics.add_dimension(name=name, value=value)
    started = time.perf_counter()
    succeeded = False
    try:
        yield metrics
        succeeded = True
    finally:
        metrics.add_metric(name=f"{step}.success", unit=MetricUnit.Count, value=1 if succeeded else 0)
        elapsed_ms = (time.perf_counter() - started) * 1000
        metrics.add_metric(name=f"{step}.time", unit=MetricUnit.Milliseconds, value=round(elapsed_ms, 1))
        metrics.flush_metrics()
