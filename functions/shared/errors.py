"""Errors the steps raise on purpose.

Step Functions names a Lambda error after the exception's class, so these class names are part of the
contract: the state machine's Retry/Catch rules and the notifications refer to them.
"""


class PipelineError(Exception):
    """A failure the pipeline reports to a person; the message says what went wrong and what to do."""


class InvalidRequest(PipelineError):
    """The request cannot be deployed; the message lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(f"{heading} in the request: " + "; ".join(self.problems))


class ClearPrefixFailed(PipelineError):
    """Objects under the repo prefix could not be deleted."""


class UploadFailed(PipelineError):
    """Files could not be copied into the repo prefix."""


class AstroConfigError(PipelineError):
    """The workspace or deployment has no Astro ID configured, or the Astro token cannot be read."""


class AstroDeployFailed(PipelineError):
    """The astro CLI did not report a successful deploy; the message carries its last lines, redacted."""


class AstroUnavailable(AstroDeployFailed):
    """A transient failure talking to Astro (network error, 5xx): the state machine retries it."""


class BundleMissing(PipelineError):
    """The per-repo Dag bundle does not exist in Astro, and the configuration says not to create it."""


class EmptyBundleRefused(PipelineError):
    """The deployment holds no files; deploying would delete every DAG it runs."""


class LockWaitExpired(PipelineError):
    """Another execution held the deployment's lock for longer than this one may wait."""


class RollbackFailed(PipelineError):
    """The repo prefix could not be restored to what it held before the execution."""


class BundleFailed(PipelineError):
    """The deployment's files in the DAG bucket could not be gathered into a bundle (an unsafe key, a failed read)."""
