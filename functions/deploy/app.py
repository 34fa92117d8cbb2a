"""Deploy step: ship every repo of the deployment to Astro with the astro CLI (a container Lambda)."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.deploy.deploying import DeployInput, DeploySettings, deploy_deployment
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("deploy")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("deploy")
def handler(event: dict, context: LambdaContext) -> dict:
    request = DeployInput.from_json(event)
    settings = DeploySettings.from_environment(os.environ)
    with step_metrics("deploy", dimensions(request.workspace, request.deployment, request.repo)) as metrics:
        outcome = deploy_deployment(request, settings, context.get_remaining_time_in_millis)
        metrics.add_metric(name="deploy.files", unit=MetricUnit.Count, value=outcome.result.files)
        metrics.add_metric(name="deploy.bytes", unit=MetricUnit.Bytes, value=outcome.result.bytes)
        metrics.add_metric(name="deploy.recorded", unit=MetricUnit.Count, value=0 if outcome.manifest_problem else 1)
    if outcome.manifest_problem:
        logger.error(outcome.manifest_problem)
    logger.info("deployed", extra={**outcome.result.to_json(), "cli_output": outcome.cli_output})
    return outcome.result.to_json()
