"""Notify step: publish a failure to the SNS topic, once per failed execution.

Once: an execution stopped while its Notify ran (the invocation runs on, and may publish) is recovered, and the
recovery notifies too (cdk/recovery.py). Both invocations carry the failed execution's ARN; powertools' idempotency
records the first that completed, and the second answers its result without publishing.
"""

import functools
import os
from collections.abc import Callable

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.shared.aws import client
from functions.shared.execution_ends import NOTIFIED_RECORD_LIFETIME
from functions.shared.execution_state import NotificationResult
from functions.shared.notification import (
    NOTIFIED_EXPIRY_ATTRIBUTE, NOTIFIED_KEY_ATTRIBUTE, FailedExecution, failure_notification, with_parse_report,
)
from functions.shared.observability import CORRELATION_ID_PATH, dimensions, step_logger, step_metrics, traced

logger = step_logger("notify")


def once_per_execution(handler: Callable[[dict, LambdaContext], dict]) -> Callable[[dict, LambdaContext], dict]:
    """powertools' `idempotent`, keyed on the event's `execution_arn`, made on the first call: its persistence layer
    and its import, which a handler module's import (every cold start's first cost) then does not pay. Made again
    only with another client or table (the tests' and the local mode's embedded AWS)."""

    @functools.cache
    def idempotent_handler(dynamodb: object, table: str) -> Callable[[dict, LambdaContext], dict]:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer, IdempotencyConfig, idempotent,
        )

        records = DynamoDBPersistenceLayer(table_name=table, key_attr=NOTIFIED_KEY_ATTRIBUTE,
                                           expiry_attr=NOTIFIED_EXPIRY_ATTRIBUTE, boto3_client=dynamodb)
        config = IdempotencyConfig(event_key_jmespath="execution_arn", raise_on_no_idempotency_key=True,
                                   expires_after_seconds=int(NOTIFIED_RECORD_LIFETIME.total_seconds()))
        return idempotent(config=config, persistence_store=records)(handler)

    @functools.wraps(handler)
    def run(event: dict, context: LambdaContext) -> dict:
        return idempotent_handler(client("dynamodb"), os.environ["NOTIFIED_TABLE"])(event, context)

    return run


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@traced("notify")
@once_per_execution
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
