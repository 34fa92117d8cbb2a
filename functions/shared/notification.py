"""Notify: tell a person what failed, where, and where to look."""

import json
import re

from pydantic import BaseModel, Field

CAUSE_LIMIT = 2000
SUBJECT_LIMIT = 100  # SNS refuses longer subjects
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class Failure(BaseModel):
    state: str = "unknown state"
    error: str = "unknown error"
    cause: str | None = None


class FailureEvent(BaseModel):
    """Notify's input: the execution, and its state when the failure was caught."""

    execution: str
    execution_arn: str
    state: dict = Field(default_factory=dict)


class Notification(BaseModel):
    subject: str
    message: str


def _text(value: object, limit: int = 64) -> str | None:
    # Identity fields may come from a request Parse refused: show them, but only as short printable text.
    if not isinstance(value, str) or not value:
        return None
    return _UNPRINTABLE.sub("?", value)[:limit]


def readable_cause(cause: str | None, limit: int = CAUSE_LIMIT) -> str:
    if not cause:
        return "(no cause given)"
    try:
        # Lambda errors arrive as {"errorType", "errorMessage", "stackTrace"}: the message is what a person needs.
        decoded = json.loads(cause)
        cause = decoded.get("errorMessage", cause) if isinstance(decoded, dict) else cause
    except ValueError:
        pass
    return cause if len(cause) <= limit else cause[:limit] + f"... ({len(cause) - limit} more characters)"


def console_url(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 4 else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def failure_notification(event: FailureEvent) -> Notification:
    state = event.state
    failure = Failure.model_validate(state.get("failure") or {})
    repo = _text(state.get("repo")) or "unknown repo"
    workspace = _text(state.get("workspace") or state.get("astroWorkspace")) or "?"
    deployment = _text(state.get("deployment") or state.get("astroDeployment")) or "?"
    commit = _text(state.get("commit"), 12)
    subject = f"astro-dag-deploy FAILED: {repo} -> {workspace}/{deployment} at {failure.state}"
    lines = [
        f"Deploying {repo}{f' (commit {commit})' if commit else ''} to {workspace}/{deployment} failed "
        f"at {failure.state}.",
        "",
        f"Error: {failure.error}",
        f"Cause: {readable_cause(failure.cause)}",
    ]
    rollback = state.get("rollback")
    if isinstance(rollback, dict) and rollback.get("status") == "FAILED":
        subject = "ROLLBACK FAILED " + subject
    lines += ["", _rollback_line(rollback, state.get("prefix") or f"the prefix of {repo}", event.execution)]
    if state.get("lock_released") is False:
        lines.append("The deployment's lock was not held by this execution any more (nothing to release).")
    lines += ["", f"Execution: {event.execution}", f"Console: {console_url(event.execution_arn)}"]
    return Notification(subject=_UNPRINTABLE.sub("?", subject)[:SUBJECT_LIMIT], message="\n".join(lines))


def _rollback_line(rollback: object, prefix: str, execution: str) -> str:
    if not isinstance(rollback, dict):
        return "Nothing was changed: the failure came before the repo's files were touched."
    status = rollback.get("status")
    if status == "restored":
        return (f"Rollback: {rollback.get('prefix', prefix)} holds exactly what it held before this execution "
                f"({rollback.get('restored', 0)} files put back, {rollback.get('removed', 0)} removed, "
                f"{rollback.get('unchanged', 0)} unchanged).")
    if status == "nothing to restore":
        return f"Rollback: not needed, {rollback.get('prefix', prefix)} had not been changed yet."
    return (f"ROLLBACK FAILED: {rollback.get('error', 'unknown error')}: "
            f"{readable_cause(rollback.get('cause'))}\n"
            f"{prefix} may hold a partial set of files. Restore it by hand from the restore point "
            f"(restore-points/{execution}.json in the DAG bucket; README, Operations).")
