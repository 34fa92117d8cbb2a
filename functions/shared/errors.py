"""Errors the steps raise on purpose.

Step Functions names a Lambda error after the exception's class, so these class names are part of the
contract: the state machine's Retry/Catch rules and the notifications refer to them.
"""

import json


# An error's message becomes the cause of the execution's failure (a Fail state's cause holds at most 32,768
# characters) inside Lambda's error document, which escapes it as JSON (six characters for an "é"): bounded in
# that form, with room for the stack trace.
MESSAGE_LIMIT = 8000
# An invalid request's message shows this many of its problems, each cut to this length; the full list is in the
# report Parse stores (functions/shared/plan_store.py).
PROBLEMS_SHOWN = 20
PROBLEM_LIMIT = 600


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def bounded_message(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """`message`, cut so that it is at most `limit` characters once escaped as a JSON string."""
    kept = len(message)
    while len(json.dumps(shortened(message, kept))) > limit:
        kept = min(kept - 1, int(kept * 0.9))
    return shortened(message, kept)


class PipelineError(Exception):
    """A failure the pipeline reports to a person; the message says what went wrong and what to do."""

    def __init__(self, message: str = ""):
        super().__init__(bounded_message(str(message)))


class InvalidRequest(PipelineError):
    """The request cannot be deployed. The message counts the problems and shows the first ones; `report`, once
    Parse has stored them all, is where the full list is."""

    def __init__(self, problems: list[str], report: str | None = None):
        self.problems = list(problems)
        self.report = report
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        where = f" (full report: {report})" if report else ""
        shown = "; ".join(shortened(problem, PROBLEM_LIMIT) for problem in self.problems[:PROBLEMS_SHOWN])
        first = f"the first {PROBLEMS_SHOWN}: " if count > PROBLEMS_SHOWN else ""
        super().__init__(f"{heading} in the request{where}: {first}{shown}")

    def reported(self, report: str) -> "InvalidRequest":
        """The same refusal, pointing to the full report stored at `report`."""
        return InvalidRequest(self.problems, report)


class DagIdTaken(InvalidRequest):
    """Once the lock was held, another repo's live files turned out to define one of the request's dag_ids."""


class ClearPrefixFailed(PipelineError):
    """Objects under the repo prefix could not be deleted."""


class UploadFailed(PipelineError):
    """Files could not be copied into the repo prefix."""


class AstroConfigError(PipelineError):
    """The workspace or deployment has no Astro ID configured, or the Astro token cannot be read."""


class AstroDeployFailed(PipelineError):
    """The astro CLI did not report a successful deploy; the message carries its last lines, redacted."""


class AstroUnavailable(AstroDeployFailed):
    """A transient failure talking to Astro (network error, 5xx): Deploy tries again, on the bundle it gathered, after
    each of its waits (functions/deploy/deploying.py)."""


class BundleMissing(PipelineError):
    """The per-repo Dag bundle does not exist in Astro, and the configuration says not to create it."""


class EmptyBundleRefused(PipelineError):
    """The deployment holds no files; deploying would delete every DAG it runs."""


class LockWaitExpired(PipelineError):
    """Another execution held the deployment's lock for longer than this one may wait."""


class LockFree(PipelineError):
    """The lock was released before this execution could wait for it: it tries to take it again at once."""


class LockLost(PipelineError):
    """The execution no longer holds the deployment's lock (its lease ran out and another took it)."""


class ShipInFlight(PipelineError):
    """Another execution's ship of the deployment is still uploading: this one defers its ship to the next."""


class RollbackFailed(PipelineError):
    """The repo prefix could not be restored to what it held before the execution."""


class BundleFailed(PipelineError):
    """The deployment's files in the DAG bucket could not be gathered into a bundle (an unsafe key, a failed read)."""
