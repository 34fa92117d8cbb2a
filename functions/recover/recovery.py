"""Recover: the failure path for executions that never reach it (stopped, timed out).

The request model is pydantic, some 100 ms to import: it is loaded when an execution is recovered, not by the
import of the handler, which every cold start pays.
"""

import json
import os

from functions.shared.astro_targets import resolve_astro_target
from functions.shared.aws import client
from functions.shared.dag_bundles import MAIN_BUNDLE, UnmappableRepo
from functions.shared.documents import Document, document
from functions.shared.execution_state import (
    LOCK_NOT_HELD, CaughtError, ExecutionState, Failure, RollbackFailure, RunScope,
)
from functions.shared.errors import AstroConfigError
from functions.shared.locking import lock_key, release
from functions.shared.notification import FailedExecution, failure_notification
from functions.shared.observability import step_logger
from functions.shared.restore_point import restore

logger = step_logger("recover")


@document
class ExecutionEnded(Document):
    """The `detail` of EventBridge's "Step Functions Execution Status Change" event."""

    executionArn: str
    name: str
    status: str
    input: str | None = None
    cause: str | None = None
    error: str | None = None


def requested_scope(ended: ExecutionEnded) -> RunScope | None:
    """Who the stopped execution deployed for, if its request was valid (Parse refuses any other before anything
    is locked or changed)."""
    from pydantic import ValidationError

    from functions.shared.models import DeployRequest

    try:
        request = DeployRequest.model_validate(json.loads(ended.input or "null"))
    except (ValueError, ValidationError):
        return None
    return RunScope(workspace=request.workspace, deployment=request.deployment, repo=request.repo,
                    commit=request.commit, execution=ended.name,
                    bundle=locked_bundle(request.workspace, request.deployment, request.repo))


def locked_bundle(workspace: str, deployment: str, repo: str) -> str:
    """The bundle whose lock the execution took; Parse refuses a request without one before anything is locked."""
    try:
        return resolve_astro_target(workspace, deployment).bundle(repo)
    except (AstroConfigError, UnmappableRepo):
        return MAIN_BUNDLE


def recover_execution(ended: ExecutionEnded) -> dict:
    """Undo what a stopped or timed-out execution may have left half done, and tell a person."""
    failure = Failure(state=f"execution {ended.status}", error=ended.error or f"States.{ended.status}",
                      cause=ended.cause or f"the execution was {ended.status.lower().replace('_', ' ')}")
    scope = requested_scope(ended)
    rollback, lock_release, released = None, None, False
    if scope is not None:
        try:
            rollback = restore(os.environ["DAG_BUCKET"], scope)
        except Exception as error:  # noqa: BLE001 -- any failure must reach the notification, loudly
            logger.exception("rollback after stop failed")
            rollback = RollbackFailure(error=type(error).__name__, cause=str(error))
        released = release(os.environ["LOCK_TABLE"], lock_key(scope.workspace, scope.deployment, scope.bundle),
                           ended.name)
        if not released:
            lock_release = CaughtError(Error=LOCK_NOT_HELD, Cause=f"execution {ended.name} does not hold the lock")
    request = json.loads(ended.input) if scope is not None else None
    state = ExecutionState(failure=failure, rollback=rollback, lock_release=lock_release)
    notification = failure_notification(FailedExecution(execution=ended.name, execution_arn=ended.executionArn,
                                                        request=request, state=state))
    client("sns").publish(TopicArn=os.environ["TOPIC_ARN"], Subject=notification.subject,
                          Message=notification.message)
    return {"subject": notification.subject, "rollback": rollback.to_json() if rollback else None,
            "lock_released": released}
