"""DryRun step: the report of a dry run, which changes nothing: the diff against what is live and every problem."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.dry_run.reporting import dry_run_report
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("dry_run")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("dry_run")
def handler(event: dict, context: LambdaContext) -> dict:
    # Parse's output: its plan summary, or the problems of a request it refused (which names no one then).
    with step_metrics("dry_run", dimensions(event.get("workspace"), event.get("deployment"), event.get("repo"))):
        report = dry_run_report(event, os.environ["DAG_BUCKET"])
    logger.info("dry run", extra={"passed": report.passed, "problems": len(report.problems)})
    return report.to_json()
