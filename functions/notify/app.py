"""Notify step: publish a failure to the SNS topic."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.aws import client
from functions.shared.execution_state import NotificationResult
from functions.shared.notification import FailedExecution, failure_notification, with_parse_report
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("notify")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("notify")
def handler(event: dict, context: LambdaContext) -> dict:
    failed = with_parse_report(FailedExecution.from_json(event), os.environ["DAG_BUCKET"])
    names = failed.names
    with step_metrics("notify", dimensions(names.workspace, names.deployment, names.repo)):
        notification = failure_notification(failed)
        response = client("sns").publish(
            TopicArn=os.environ["TOPIC_ARN"], Subject=notification.subject, Message=notification.message
        )
    logger.info("failure notified", extra={"subject": notification.subject})
    return NotificationResult(subject=notification.subject, message_id=response["MessageId"]).to_json()
