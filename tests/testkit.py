"""Names and stand-ins the tests share (importable, unlike conftest.py)."""

import json
from dataclasses import dataclass

REGION = "eu-west-1"
DAG_BUCKET = "test-dag-bucket"
SOURCE_BUCKET = "test-ci-artifacts"


@dataclass
class FakeLambdaContext:
    """What powertools and the deploy step read from Lambda's context object."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def emitted_metrics(output: str, **dimensions: str) -> dict[str, float]:
    """The EMF metrics printed in `output` whose documents carry the given dimension values."""
    metrics = {}
    for line in output.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        document = json.loads(line)
        if any(document.get(name) != value for name, value in dimensions.items()):
            continue
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = document[definition["Name"]]
            metrics[definition["Name"]] = value[0] if isinstance(value, list) else value
    return metrics
