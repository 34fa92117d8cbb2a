"""Notify: tell a person what failed, where, and where to look."""

import dataclasses
import json
import re
from dataclasses import field

from functions.shared.documents import Document
from functions.shared.errors import MESSAGE_LIMIT
from functions.shared.execution_state import (
    LOCK_NOT_HELD, CaughtError, DeployResult, ExecutionState, Failure, RequestedNames, RestoreResult, RollbackFailure,
)
from functions.shared.paths import restore_point_key
from functions.shared.plan_store import load_parse_report, parse_report_uri
from functions.shared.records import Record

# An error's whole message (functions/shared/errors.py bounds it), not an unbounded cause.
CAUSE_LIMIT = MESSAGE_LIMIT
# SNS takes a subject of ASCII text without control characters, shorter than 100 characters.
SUBJECT_LIMIT = 99
ELLIPSIS = "..."  # ASCII: SNS refuses any other character in a subject
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
UNKNOWN_FAILURE = Failure(state="unknown state", error="unknown error")
# The attributes of Notify's record of each execution it notified (powertools idempotency's own names), which the
# table's key and TTL name too (cdk/notifications.py).
NOTIFIED_KEY_ATTRIBUTE = "id"
NOTIFIED_EXPIRY_ATTRIBUTE = "expiration"


class FailedExecution(Document):
    """Notify's input: the execution, its request (the execution's input) and its state when the failure was
    caught."""

    execution: str
    execution_arn: str
    # The request, or its name fields (from Parse's report): the state holds the names only once Parse succeeded.
    request: object = None
    state: ExecutionState = field(default_factory=ExecutionState)
    report: str | None = None  # where the full report of a refused request is

    @property
    def names(self) -> RequestedNames:
        plan = self.state.plan
        if plan:
            return RequestedNames(workspace=plan.workspace, deployment=plan.deployment, repo=plan.repo,
                                  commit=plan.commit)
        return RequestedNames.from_request(self.request)


def with_parse_report(failed: FailedExecution, dag_bucket: str) -> FailedExecution:
    """After Parse failed, the names and the report's place from the report Parse stored (the state carries
    neither the request nor its problems: both may be large)."""
    if failed.state.plan is not None or failed.request is not None:
        return failed
    report = load_parse_report(dag_bucket, failed.execution)
    if report is None:
        return failed
    return dataclasses.replace(failed, request=report.requested,
                               report=parse_report_uri(dag_bucket, failed.execution))


class Notification(Record):
    subject: str
    message: str


def _text(value: object, limit: int = 64) -> str | None:
    # The names come from the request as sent, maybe one Parse refused: show them, but only as short printable text.
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


def failure_notification(failed: FailedExecution) -> Notification:
    state, names = failed.state, failed.names
    failure = state.failure or UNKNOWN_FAILURE
    repo = _text(names.repo) or "unknown repo"
    workspace = _text(names.workspace) or "?"
    deployment = _text(names.deployment) or "?"
    commit = _text(names.commit, 12)
    outcome = "astro-dag-deploy FAILED: "
    lines = [
        f"Deploying {repo}{f' (commit {commit})' if commit else ''} to {workspace}/{deployment} failed "
        f"at {failure.state}.",
        "",
        f"Error: {failure.error}",
        f"Cause: {readable_cause(failure.cause)}",
    ]
    if failed.report:
        lines.append(f"Every problem found: {failed.report}")
    if isinstance(state.rollback, RollbackFailure):
        outcome = "ROLLBACK FAILED " + outcome
    if state.reship_error:
        outcome = "RESHIP FAILED " + outcome
    prefix = state.plan.prefix if state.plan else f"the prefix of {repo}"
    lines += ["", _rollback_line(state.rollback, prefix, failed.execution)]
    if state.deploy or state.reship_error:
        lines.append(_reship_line(state.deploy, state.reship_error))
    if state.lock_release:
        lines.append(_lock_release_line(state.lock_release.Error))
    lines += ["", f"Execution: {failed.execution}", f"Console: {console_url(failed.execution_arn)}"]
    subject = _subject(outcome, f"{repo} -> {workspace}/{deployment}", f" at {_text(failure.state, SUBJECT_LIMIT) or '?'}")
    return Notification(subject=subject, message="\n".join(lines))


def _subject(outcome: str, names: str, where: str) -> str:
    """`<outcome><names><where>` within SNS's limit: long names are shortened first, so that the outcome and the
    failed state survive; whatever still does not fit is cut at the end."""
    room = SUBJECT_LIMIT - len(outcome) - len(where)
    if len(names) > room:
        names = _shortened(names, max(room, len(ELLIPSIS)))
    return _shortened(_UNPRINTABLE.sub("?", outcome + names + where), SUBJECT_LIMIT)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _rollback_line(rollback: RestoreResult | RollbackFailure | None, prefix: str, execution: str) -> str:
    if rollback is None:
        return "Nothing was changed: the failure came before the repo's files were touched."
    if isinstance(rollback, RollbackFailure):
        return (f"ROLLBACK FAILED: {rollback.error}: {readable_cause(rollback.cause)}\n"
                f"{prefix} may hold a partial set of files. Restore it by hand from the restore point "
                f"({restore_point_key(execution)} in the DAG bucket; README, Operations).")
    if rollback.status == "restored":
        return (f"Rollback: {rollback.prefix} holds exactly what it held before this execution "
                f"({rollback.restored} files put back, {rollback.removed} removed, {rollback.unchanged} unchanged).")
    if rollback.status == "deferred":
        return (f"Rollback: not done: this execution had left its ship to a later one of the deployment, which "
                f"carries (or carried) {rollback.prefix} as it is. Should no other push of this deployment follow, "
                "re-run this one to ship it.")
    return f"Rollback: not needed, {rollback.prefix} had not been changed yet."


def _reship_line(shipped: DeployResult | None, error: CaughtError | None) -> str:
    """After a recovery: Astro may have received the stopped execution's files, so the restored ones were shipped."""
    if error:
        return (f"RESHIP FAILED: {error.Error}: {readable_cause(error.Cause)}\nAstro may run the stopped execution's "
                "files while S3 holds the restored ones: re-run the last deploy of this deployment.")
    return (f"Re-shipped: the stopped execution may have deployed, so Astro deployment {shipped.deployment_id} received "
            f"the restored files again (Dag bundle {shipped.bundle}, version {shipped.version}).")


def _lock_release_line(error: str) -> str:
    if error == LOCK_NOT_HELD:
        # After AcquireLock failed, it was never taken; otherwise its lease ran out and another execution took it, or
        # a retried Rollback found the ship slot, which its Deploy had handed the lock over to, already ended.
        return "The deployment's lock was not held by this execution (nothing to release)."
    return (f"The deployment's lock could not be released ({error}): it frees itself when its lease ends "
            "(README, Operations).")
