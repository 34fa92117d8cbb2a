"""Parse step: validate the request and store the deploy plan."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.parse.planning import build_plan, refused_dry_run, summarize
from functions.parse.refusal import reported_failure
from functions.shared.documents import Document
from functions.shared.errors import InvalidRequest
from functions.shared.execution_state import RequestedNames
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced
from functions.shared.plan_store import save_plan

logger = step_logger("parse")


class ParseInput(Document):
    request: object = None  # the execution's input, as sent: build_plan validates it
    execution: str


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("parse")
def handler(event: dict, context: LambdaContext) -> dict:
    parse_input = ParseInput.from_json(event)
    names = RequestedNames.from_request(parse_input.request)
    source_buckets = frozenset(filter(None, os.environ["SOURCE_BUCKETS"].split(",")))
    try:
        with step_metrics("parse", dimensions(names.workspace, names.deployment, names.repo)) as metrics:
            try:
                plan, warnings = build_plan(parse_input.request, parse_input.execution, source_buckets,
                                            dag_bucket=os.environ["DAG_BUCKET"],
                                            bundle_limit_bytes=int(os.environ["BUNDLE_LIMIT_BYTES"]))
            except Exception as error:
                raise reported_failure(error, parse_input.request, parse_input.execution,
                                       os.environ["DAG_BUCKET"]) from None
            summary = summarize(plan, save_plan(os.environ["DAG_BUCKET"], plan), warnings)
            metrics.add_metric(name="parse.files", unit=MetricUnit.Count, value=summary.files)
    except InvalidRequest as refusal:
        if not names.dry_run:
            raise
        # A dry run's problems are its result: the DryRun state reports them and fails the execution.
        logger.info("dry run refused", extra={"problems": len(refusal.problems)})
        return refused_dry_run(refusal).to_json()
    for warning in warnings:
        logger.warning(warning)
    logger.info("plan ready", extra={"files": summary.files, "dags": summary.dag_count, "plan": summary.plan})
    return summary.to_json()
