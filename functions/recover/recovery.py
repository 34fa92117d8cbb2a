"""Recover: the failure path for executions that never reach it (stopped, timed out)."""

import json
import os

from pydantic import BaseModel, ValidationError

from functions.shared.restore_point import restore
from functions.shared.aws import client
from functions.shared.locking import lock_key, release
from functions.shared.models import DeployRequest, Target
from functions.shared.notification import FailureEvent, failure_notification
from functions.shared.observability import step_logger

logger = step_logger("recover")


class ExecutionEnded(BaseModel):
    """The `detail` of EventBridge's "Step Functions Execution Status Change" event."""

    executionArn: str
    name: str
    status: str
    input: str | None = None
    cause: str | None = None
    error: str | None = None


def recover_execution(ended: ExecutionEnded) -> dict:
    """Undo what a stopped or timed-out execution may have left half done, and tell a person."""
    try:
        request = DeployRequest.model_validate(json.loads(ended.input or "null"))
    except (ValueError, ValidationError):
        request = None  # Parse refuses such input before anything is locked or changed.
    state: dict = {"failure": {"state": f"execution {ended.status}", "error": ended.error or f"States.{ended.status}",
                               "cause": ended.cause or f"the execution was {ended.status.lower().replace('_', ' ')}"}}
    if request is not None:
        target = Target(workspace=request.workspace, deployment=request.deployment, repo=request.repo,
                        commit=request.commit, execution=ended.name)
        state.update(target.model_dump())
        try:
            state["rollback"] = restore(os.environ["DAG_BUCKET"], target).model_dump()
        except Exception as error:  # noqa: BLE001 -- any failure must reach the notification, loudly
            logger.exception("rollback after stop failed")
            state["rollback"] = {"status": "FAILED", "error": type(error).__name__, "cause": str(error)}
        state["lock_released"] = release(os.environ["LOCK_TABLE"], lock_key(request.workspace, request.deployment),
                                         ended.name)
    notification = failure_notification(FailureEvent(execution=ended.name, execution_arn=ended.executionArn,
                                                     state=state))
    client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Subject=notification.subject,
                          Message=notification.message)
    return {"subject": notification.subject, "rollback": state.get("rollback"),
            "lock_released": state.get("lock_released", False)}


