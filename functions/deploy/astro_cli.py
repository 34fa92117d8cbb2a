"""Deploy: run the astro CLI, and believe nothing but its success line.

The CLI has paths that exit 0 without deploying ("Canceling deploy...", "Invalid workspace id ..."), so a run
counts as deployed only when it exits 0 AND prints `Successfully uploaded DAGs with version <V> to Astro`.
Its output is redacted before anything keeps it: it may echo the token.
"""

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

from functions.shared.errors import AstroDeployFailed, AstroUnavailable
from functions.shared.records import FrozenRecord

TAIL_LINES = 20
LINE_LIMIT = 400
KILL_GRACE_SECONDS = 5
REDACTED = "[REDACTED]"

# ANSI escape sequences (colours, bold): the version in the success line is wrapped in bold.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_SUCCESS = re.compile(r"Successfully uploaded DAGs with version (\S+) to Astro")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)\S+")

# Failures no retry can fix, each with what to do about it. Checked before the transient markers below.
_PERMANENT = (
    (
        ("API Token is invalid or malformed", "API Token is expired", "does not appear to be an Astro API Token"),
        "the Astro API token is invalid or expired: put a valid Deployment or Workspace API token in the secret "
        "{secret}",
    ),
    (
        ("DAG-only deploys are not enabled",),
        "DAG-only deploys are disabled on Astro deployment {deployment_id}: enable them "
        "(astro deployment update {deployment_id} --dag-deploy enable)",
    ),
    (
        ("read-only file system", "Error creating default config in home dir", "Error reading config in home dir"),
        "the astro CLI could not write its home folder: HOME and ASTRO_HOME must name a writable folder under /tmp",
    ),
)
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|TLS handshake timeout|context deadline exceeded"
    r"|Client\.Timeout|dial tcp|no such host|Internal Server Error|Bad Gateway|Service Unavailable"
    r"|Gateway Timeout|\b50[234]\b",
    re.IGNORECASE,
)
# Why a run that exited 0 deployed nothing, when the CLI said so.
_NOTHING_DEPLOYED = (
    ("Canceling deploy", "it found no DAG file and canceled the deploy"),
    (
        "Invalid workspace id",
        "the workspaceId configured for {astro_deployments_key} does not own Astro deployment {deployment_id}: fix "
        "astroDeployments in cdk.json",
    ),
    ("uncommitted changes", "it refused a project with uncommitted changes"),
)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    return _BEARER.sub(lambda match: match[1] + REDACTED, text)


class CliRun(FrozenRecord):
    exit_code: int | None  # None: killed at its timeout
    output: str  # stdout and stderr as they interleaved, without ANSI codes, redacted
    timeout_seconds: float

    @property
    def tail(self) -> str:
        lines = [line.rstrip()[:LINE_LIMIT] for line in self.output.splitlines() if line.strip()]
        return "\n".join(lines[-TAIL_LINES:])


def run_cli(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_seconds: float, secrets: Iterable[str]
) -> CliRun:
    """Run the CLI in its own session, killing its whole process group if it outlives `timeout_seconds`."""
    try:
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    except FileNotFoundError:
        raise AstroDeployFailed(
            f"the astro CLI {argv[0]!r} was not found: the image installs it at /usr/local/bin/astro; "
            "check the ASTRO_CLI setting of the deploy function"
        ) from None
    except OSError as error:
        raise AstroDeployFailed(f"the astro CLI {argv[0]!r} could not be started: {error.strerror or error}") from None
    try:
        raw, _ = process.communicate(timeout=timeout_seconds)
        exit_code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        # The CLI may have started helpers; they share its session's process group.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            raw, _ = process.communicate(timeout=KILL_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            raw = b""
        exit_code = None
    output = redact(_ANSI.sub("", raw.decode("utf-8", errors="replace")), secrets)
    return CliRun(exit_code=exit_code, output=output, timeout_seconds=timeout_seconds)


def deployed_version(run: CliRun, *, deployment_id: str, astro_deployments_key: str, secret: str) -> str:
    """The DAG bundle version the CLI reported; raises AstroDeployFailed/AstroUnavailable for any other outcome."""
    facts = {"deployment_id": deployment_id, "astro_deployments_key": astro_deployments_key, "secret": secret}
    success = _SUCCESS.search(run.output)
    if run.exit_code == 0 and success:
        return success[1]
    if run.exit_code is None:
        summary = (
            f"astro deploy did not finish within {run.timeout_seconds:.0f} s and was killed before the Lambda's "
            "deadline; the deploy may or may not have reached Astro: check the deployment's deploy history, and "
            "raise deployTimeoutSeconds in cdk.json if deploys need longer"
        )
        raise AstroDeployFailed(_with_tail(summary, run))
    if run.exit_code == 0:
        reasons = [reason.format(**facts) for marker, reason in _NOTHING_DEPLOYED if marker in run.output]
        reason = "; ".join(reasons) or "see its output below"
        raise AstroDeployFailed(_with_tail(f"astro deploy exited 0 without its success line, so nothing was "
                                           f"deployed to {deployment_id}: {reason}", run))
    for markers, advice in _PERMANENT:
        if any(marker in run.output for marker in markers):
            raise AstroDeployFailed(_with_tail(f"astro deploy failed: {advice.format(**facts)}", run))
    ended = f"exited {run.exit_code}" if run.exit_code > 0 else f"was killed by signal {-run.exit_code}"
    if _TRANSIENT.search(run.output):
        raise AstroUnavailable(_with_tail(f"astro deploy {ended} on a network or server error talking to Astro "
                                          f"(Deploy tries again, a few times)", run))
    raise AstroDeployFailed(_with_tail(f"astro deploy {ended} without deploying to {deployment_id}", run))


def listed_bundles(run: CliRun, *, deployment_id: str) -> set[str]:
    """The bundle names `astro deployment bundle list --json` printed: a JSON list of bundles, or an object holding
    one under "bundles", each with its "name"."""
    if run.exit_code != 0:
        raise AstroDeployFailed(_with_tail(f"astro deployment bundle list failed for {deployment_id}", run))
    start = min((index for index in (run.output.find("["), run.output.find("{")) if index >= 0), default=-1)
    try:
        listed = json.JSONDecoder().raw_decode(run.output[start:])[0] if start >= 0 else None
    except ValueError:
        listed = None
    if isinstance(listed, dict):
        listed = listed.get("bundles")
    if not isinstance(listed, list) or not all(isinstance(entry, dict) and "name" in entry for entry in listed):
        raise AstroDeployFailed(_with_tail(f"astro deployment bundle list printed no JSON list of bundles for "
                                           f"{deployment_id}", run))
    return {str(entry["name"]) for entry in listed}


def _with_tail(summary: str, run: CliRun) -> str:
    return f"{summary}.\nLast lines of the astro CLI output (redacted):\n{run.tail or '(no output)'}"
