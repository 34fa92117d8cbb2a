"""The status API's route: GET /deployments/{executionName}, with powertools' REST resolver."""

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError

from functions.status.describing import ExecutionNotFound, InvalidExecutionName, describe_deployment

# The handler's logger (functions/status/app.py), with its correlation id.
logger = Logger(service="status", child=True)
api = APIGatewayRestResolver()


@api.get("/deployments/<execution_name>")
def get_deployment(execution_name: str) -> dict:
    try:
        status = describe_deployment(os.environ["STATE_MACHINE_ARN"], execution_name)
    except InvalidExecutionName as error:
        raise BadRequestError(str(error)) from None
    except ExecutionNotFound as error:
        raise NotFoundError(str(error)) from None
    logger.info("status", extra={"execution_name": status.name, "status": status.status, "state": status.state})
    return status.to_api()
