"""Deploy step: ship every repo of the deployment to Astro with the astro CLI (a container Lambda)."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.deploy.deploying import DeployInput, DeploySettings, deploy_deployment
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics

logger = step_logger("deploy")
tracer = Tracer(service="deploy")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    request = parse(event=event, model=DeployInput)
    settings = DeploySettings.from_environment(os.environ)
    with step_metrics("deploy", dimensions(request.workspace, request.deployment, request.repo)) as metrics:
        deployment = deploy_deployment(request, settings, context.get_remaining_time_in_millis)
        metrics.add_metric(name="deploy.files", unit=MetricUnit.Count, value=deployment.result.files)
        metrics.add_metric(name="deploy.bytes", unit=MetricUnit.Bytes, value=deployment.result.bytes)
    logger.info("deployed", extra={**deployment.result.model_dump(), "cli_output": deployment.cli_output})
    return deployment.result.model_dump()
