"""The status API's routes, with powertools' REST resolver: GET /deployments/{executionName} (an execution) and
GET /targets/{workspace}/{deployment} (what is live there)."""

import dataclasses
import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError

from functions.status.describing import ExecutionNotFound, InvalidExecutionName, camel_keys, describe_deployment
from functions.status.targets import InvalidTarget, TargetNotFound, describe_targets

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


@api.get("/targets/<workspace>/<deployment>")
def get_targets(workspace: str, deployment: str) -> dict:
    try:
        targets = describe_targets(os.environ["DAG_BUCKET"], workspace, deployment)
    except InvalidTarget as error:
        raise BadRequestError(str(error)) from None
    except TargetNotFound as error:
        raise NotFoundError(str(error)) from None
    logger.info("targets", extra={"workspace": workspace, "deployment": deployment, "repos": len(targets.repos)})
    return camel_keys(dataclasses.asdict(targets))
