"""Recover: runs on EventBridge's "execution ABORTED / TIMED_OUT" events, where the state machine's own failure
path never runs: it restores the repo prefix, frees the deployment's lock and notifies."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.recover.recovery import ExecutionEnded, recover_execution
from functions.shared.observability import step_logger, traced

logger = step_logger("recover")


@logger.inject_lambda_context
@traced("recover")
def handler(event: dict, context: LambdaContext) -> dict:
    ended = ExecutionEnded.from_json(event["detail"])
    logger.set_correlation_id(ended.name)
    result = recover_execution(ended)
    logger.warning("execution ended without its failure path", extra={"status": ended.status, **result})
    return result
