"""Status API: GET /deployments/{executionName} answers how a deploy execution is doing, or how it ended."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.observability import step_logger
from functions.status.describing import ExecutionNotFound, InvalidExecutionName, describe_deployment

logger = step_logger("status")
tracer = Tracer(service="status")
app = APIGatewayRestResolver()


@app.get("/deployments/<execution_name>")
@tracer.capture_method
def get_deployment(execution_name: str) -> dict:
    try:
        status = describe_deployment(os.environ["STATE_MACHINE_ARN"], execution_name)
    except InvalidExecutionName as error:
        raise BadRequestError(str(error)) from None
    except ExecutionNotFound as error:
        raise NotFoundError(str(error)) from None
    logger.info("status", extra={"execution_name": status.name, "status": status.status, "state": status.state})
    return status.model_dump(by_alias=True)


# Not an execution's step: API Gateway's request ID correlates the logs.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
