"""Logging and metrics shared by every step: powertools JSON logs and per-step EMF metrics."""

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from functions.shared.paths import is_segment

# Every step's event carries the execution name under this key; logs use it as correlation id.
CORRELATION_ID_PATH = "execution"
UNKNOWN_DIMENSION = "invalid"


def step_logger(step: str) -> Logger:
    # The service is named in code, not by POWERTOOLS_SERVICE_NAME: the local mode runs every step in one
    # process with one environment.
    return Logger(service=step, utc=True)


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
