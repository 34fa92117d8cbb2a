"""Status API: GET /deployments/{executionName} answers how a deploy execution is doing, or how it ended."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.observability import step_logger, traced

logger = step_logger("status")


# Not an execution's step: API Gateway's request ID correlates the logs.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@traced("status")
def handler(event: dict, context: LambdaContext) -> dict:
    # powertools' event handler package costs some 75 ms to import (it loads every resolver it has): the route is
    # loaded on the first request, not by the import of this module, which every cold start pays.
    from functions.status.routes import api

    return api.resolve(event, context)
