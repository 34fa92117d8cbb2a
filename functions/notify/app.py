"""Notify step: publish a failure to the SNS topic."""

import os

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.notification import FailureEvent, failure_notification
from functions.shared.aws import client
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics

logger = step_logger("notify")
tracer = Tracer(service="notify")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    failure = parse(event=event, model=FailureEvent)
    state = failure.state
    dims = dimensions(
        state.get("workspace") or state.get("astroWorkspace"),
        state.get("deployment") or state.get("astroDeployment"),
        state.get("repo"),
    )
    with step_metrics("notify", dims):
        notification = failure_notification(failure)
        response = client("sns").publish(
            TopicArn=os.environ["TOPIC_ARN"], Subject=notification.subject, Message=notification.message
        )
    logger.info("failure notified", extra={"subject": notification.subject})
    return {"subject": notification.subject, "message_id": response["MessageId"]}
