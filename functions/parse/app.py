"""Parse step: validate the request and store the deploy plan."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.parse.planning import build_plan, summarize
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics
from functions.shared.plan_store import save_plan

logger = step_logger("parse")
tracer = Tracer(service="parse")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    request = event.get("request")
    fields = request if isinstance(request, dict) else {}
    dims = dimensions(fields.get("astroWorkspace"), fields.get("astroDeployment"), fields.get("repo"))
    source_buckets = frozenset(filter(None, os.environ["SOURCE_BUCKETS"].split(",")))
    with step_metrics("parse", dims) as metrics:
        plan, warnings = build_plan(request, event["execution"], source_buckets, os.environ["ASTRO_TARGETS"])
        summary = summarize(plan, save_plan(os.environ["DAG_BUCKET"], plan), warnings)
        metrics.add_metric(name="parse.files", unit=MetricUnit.Count, value=summary.files)
    for warning in warnings:
        logger.warning(warning)
    logger.info("plan ready", extra={"files": summary.files, "dags": summary.dag_count, "plan": summary.plan})
    return summary.model_dump()
