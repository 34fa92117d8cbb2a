"""The CI client: start a deploy through the API, follow it state by state, push a DAG folder in one command.

The API authorizes with AWS_IAM: every request is signed with SigV4 (service execute-api) using credentials from
botocore's standard chain (environment, profile, SSO, web identity, instance or task role).
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError

from astro_dag_deploy.folder import folder_files, upload_files

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_ERROR, EXIT_RUNNING = 0, 1, 2, 3
EXIT_CODES_HELP = ("Exit codes: 0 the deploy SUCCEEDED (shipped, or unchanged and skipped; a dry run found no problem); "
                   "1 it FAILED, TIMED_OUT or was ABORTED (a dry run found problems); 2 usage, credentials, HTTP or "
                   "connection error; 3 still RUNNING (status without --wait, or --timeout reached).")
EXIT_INTERRUPTED = 130
SERVICE = "execute-api"
RUNNING = "RUNNING"
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
REQUEST_TIMEOUT_SECONDS = 30
DEFAULT_POLL_SECONDS = 3.0
# Consecutive failed polls tolerated while waiting (throttling, a 5xx, a dropped connection).
POLL_RETRIES = 5
# The request model's rules for names and commits (a dev test proves they are the same), checked before uploading.
SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SEGMENT_RULE = "1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit"
COMMIT_RE = re.compile(r"[0-9a-fA-F]{4,64}")
# An allow-listed bucket and a key prefix that, with the repo and run after it, stays a valid S3 URI of the request.
_ARTIFACTS_RE = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/([^\x00-\x1f\x7f]{0,512}))?")
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$")
# Text from the server is printed to a terminal: no escape sequences or other control characters.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A GitHub output is one line: no line breaks either.
_OUTPUT_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class CommandError(Exception):
    """Ends the command with a message and exit code 2."""


class ApiError(CommandError):
    def __init__(self, message: str, status: int | None = None, transient: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient


def printable(text: object) -> str:
    return _CONTROL.sub("?", str(text))


def console_url(execution_arn: str) -> str:
    region = execution_arn.split(":")[3] if execution_arn.count(":") >= 4 else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


# ---- the API ----


def signed_headers(
    method: str, url: str, body: bytes | None, credentials: ReadOnlyCredentials, region: str
) -> dict[str, str]:
    """The headers of a SigV4-signed API request: Host, Content-Type (with a body), X-Amz-Date,
    X-Amz-Security-Token (temporary credentials) and Authorization."""
    # Host as it is sent (port included): the signature covers it.
    headers = {"Host": urlsplit(url).netloc}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def api_region(api_url: str, explicit: str | None) -> str:
    """--region, else the region in an execute-api host name, else AWS_REGION or the profile's region."""
    if explicit:
        return explicit
    match = _EXECUTE_API_HOST.search(urlsplit(api_url).hostname or "")
    if match:
        return match[1]
    region = os.environ.get("AWS_REGION") or boto3.Session().region_name
    if not region:
        raise CommandError(
            f"cannot tell the API's region from {api_url}: pass --region or set AWS_REGION (it signs the requests)"
        )
    return region


@dataclass(frozen=True)
class ApiClient:
    base_url: str
    region: str
    credentials: Credentials

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "ApiClient":
        parts = urlsplit(args.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise CommandError(f"--api-url {args.api_url!r} is not an http(s) URL of the API (with its stage)")
        region = api_region(args.api_url, args.region)
        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise CommandError(
                "no AWS credentials found: the API authorizes with IAM (SigV4). Set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role provides them"
            )
        return cls(args.api_url.rstrip("/"), region, credentials)

    def start(self, request: dict) -> dict:
        return self._call("POST", "/deployments", request)

    def status(self, name: str) -> dict:
        return self._call("GET", f"/deployments/{quote(name, safe='')}")

    def targets(self, workspace: str, deployment: str) -> dict:
        return self._call("GET", f"/targets/{quote(workspace, safe='')}/{quote(deployment, safe='')}")

    def _call(self, method: str, path: str, document: Any = None) -> dict:
        url = self.base_url + path
        body = json.dumps(document).encode() if document is not None else None
        headers = signed_headers(method, url, body, self.credentials.get_frozen_credentials(), self.region)
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                answer = _json_object(response.read())
        except urllib.error.HTTPError as error:
            raise _http_error(error.code, error.read(), method, url, self.region) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", None) or error
            raise ApiError(f"cannot reach {url}: {reason}", transient=True) from None
        if answer is None:
            raise ApiError(f"{method} {url} answered something that is not a JSON object")
        return answer


def _json_object(content: bytes) -> dict | None:
    try:
        document = json.loads(content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _http_error(code: int, content: bytes, method: str, url: str, region: str) -> ApiError:
    document = _json_object(content) or {}
    message = document.get("message") or document.get("Message") or content.decode(errors="replace")[:300]
    details = document.get("validationErrors")
    text = printable(f"{message} {details}" if details else message)
    if code == 403:
        return ApiError(
            f"the API refused the request (HTTP 403: {text}). Check that the AWS credentials belong to the API's "
            f"account, that their principal may call execute-api:Invoke on it, and that {region} is its region",
            code,
        )
    return ApiError(f"{method} {url} failed with HTTP {code}: {text}", code, transient=code == 429 or code >= 500)


# ---- following an execution ----


def new_states(seen: list[str], states: list[str]) -> list[str]:
    """The states at the end of `states` that `seen` does not hold yet (`states` may have lost its oldest ones)."""
    for overlap in range(min(len(seen), len(states)), 0, -1):
        if seen[-overlap:] == states[:overlap]:
            return states[overlap:]
    return states


def exit_code(status: str) -> int:
    if status == "SUCCEEDED":
        return EXIT_SUCCEEDED
    return EXIT_FAILED if status in FAILED_STATUSES else EXIT_RUNNING


def _duration(status: dict) -> str:
    try:
        stopped, started = datetime.fromisoformat(status["stopDate"]), datetime.fromisoformat(status["startDate"])
        seconds = (stopped - started).total_seconds()
    except (KeyError, TypeError, ValueError):
        return ""
    return f" in {seconds:.1f} s"


def _names(values: object) -> str:
    return ", ".join(printable(value) for value in values) if isinstance(values, list) and values else "none"


def print_comparison(comparison: object, out: TextIO) -> None:
    """The request against what is live: commit, files added/changed/removed, dag_ids added/removed."""
    if not isinstance(comparison, dict):
        return
    diff = comparison.get("diff") if isinstance(comparison.get("diff"), dict) else {}
    live = printable(comparison.get("liveCommit") or comparison.get("liveExecution") or "nothing")
    print(f"  Live:    {live}; {printable(comparison.get('reason') or '')}", file=out)
    for label, count, listed in (("added", "added", "filesAdded"), ("changed", "changed", "filesChanged"),
                                 ("removed", "removed", "filesRemoved")):
        print(f"  Files {label + ':':9}{printable(diff.get(count, 0))}  {_names(diff.get(listed))}", file=out)
    print(f"  DAGs added:   {_names(diff.get('dagIdsAdded'))}", file=out)
    print(f"  DAGs removed: {_names(diff.get('dagIdsRemoved'))}", file=out)


def print_dry_run(report: dict, out: TextIO) -> None:
    print_comparison(report.get("comparison"), out)
    for problem in report.get("problems") or []:
        print(f"  Problem: {printable(problem)}", file=out)
    for warning in report.get("warnings") or []:
        print(f"  Warning: {printable(warning)}", file=out)


def print_outcome(status: dict, out: TextIO) -> None:
    name, state = printable(status.get("name")), printable(status.get("state") or "?")
    report = status.get("dryRun") if isinstance(status.get("dryRun"), dict) else None
    if report is not None:
        verdict = "no problems" if status.get("status") == "SUCCEEDED" else f"{len(report.get('problems') or [])} problems"
        print(f"{name} {printable(status.get('status'))}{_duration(status)}: dry run, nothing changed, {verdict}",
              file=out)
        print_dry_run(report, out)
        return
    if status.get("status") == "SUCCEEDED" and status.get("unchanged"):
        print(f"{name} SUCCEEDED{_duration(status)}: unchanged, nothing shipped (send force to ship anyway)", file=out)
        print_comparison(status.get("live"), out)
        return
    if status.get("status") == "SUCCEEDED":
        version = f": deployed DAG bundle version {printable(status['version'])}" if status.get("version") else ""
        if status.get("version") and status.get("bundle"):
            version += f" (Dag bundle {printable(status['bundle'])})"
        if status.get("shippedBy"):
            version += f", carried by the ship of execution {printable(status['shippedBy'])}"
        print(f"{name} SUCCEEDED{_duration(status)}{version}", file=out)
        return
    print(f"{name} {printable(status.get('status'))}{_duration(status)} at {state}", file=out)
    print(f"  Error: {printable(status.get('error') or '(none)')}", file=out)
    cause = printable(status.get("cause") or "(none)").replace("\n", "\n         ")
    print(f"  Cause: {cause}", file=out)


def follow(
    api: ApiClient, name: str, poll_seconds: float, timeout: float | None, out: TextIO, progress: TextIO
) -> dict:
    """Poll the status until the execution ends or `timeout` passes, telling `progress` each state as it is
    entered; return the last status."""
    started = time.monotonic()
    seen: list[str] = []
    failed_polls = 0
    while True:
        try:
            status = api.status(name)
        except ApiError as error:
            # Step Functions describes a new execution eventually: not found before anything was seen may be that.
            retryable = error.transient or (error.status == 404 and not seen)
            if not retryable or failed_polls >= POLL_RETRIES:
                raise
            failed_polls += 1
            print(f"  (status not available yet: {error}; trying again)", file=progress, flush=True)
            time.sleep(poll_seconds)
            continue
        failed_polls = 0
        states = [printable(state) for state in status.get("states") or []]
        for state in new_states(seen, states):
            print(f"  {time.monotonic() - started:7.1f} s  {state}", file=progress, flush=True)
        seen = states
        if status.get("status") != RUNNING:
            print_outcome(status, out)
            return status
        if timeout is not None and time.monotonic() - started >= timeout:
            print(f"{printable(name)} is still RUNNING after {timeout:g} s (in {printable(status.get('state'))}); "
                  f"follow it with `astro-dag-deploy status {printable(name)} --api-url {api.base_url} --wait`",
                  file=out)
            return status
        time.sleep(poll_seconds)


def write_github_output(path: Path | None, **values: str | None) -> None:
    """Append `name=value` lines to the file GitHub Actions reads a step's outputs from ($GITHUB_OUTPUT)."""
    if path is None:
        return
    lines = "".join(f"{name.replace('_', '-')}={_OUTPUT_UNSAFE.sub('?', value or '')}\n"
                    for name, value in values.items())
    try:
        with path.open("a", encoding="utf-8") as output:
            output.write(lines)
    except OSError as error:
        raise CommandError(f"--github-output {path}: {error.strerror or error}") from None


def _finish(args: argparse.Namespace, status: dict) -> int:
    write_github_output(args.github_output, status=status.get("status"), dag_bundle=status.get("bundle"),
                        dag_bundle_version=status.get("version"))
    return exit_code(status.get("status", ""))


def start_and_follow(api: ApiClient, request: dict, args: argparse.Namespace) -> int:
    started = api.start(request)
    name, arn = started.get("name"), started.get("executionArn")
    if not isinstance(name, str) or not isinstance(arn, str):
        raise ApiError(f"the API answered without an execution name and ARN: {printable(json.dumps(started))[:300]}")
    print(f"Execution: {printable(name)}", flush=True)
    print(f"Console:   {printable(console_url(arn))}", flush=True)
    write_github_output(args.github_output, execution_name=name)
    if not args.wait:
        print(f"Follow it: astro-dag-deploy status {printable(name)} --api-url {api.base_url} --wait")
        write_github_output(args.github_output, status=RUNNING, dag_bundle=None, dag_bundle_version=None)
        return EXIT_SUCCEEDED
    return _finish(args, follow(api, name, args.poll_interval, args.timeout, sys.stdout, sys.stderr))


# ---- commands ----


def _checked_names(args: argparse.Namespace) -> None:
    for option, value in (("--workspace", args.workspace), ("--deployment", args.deployment), ("--repo", args.repo)):
        if value is not None and not SEGMENT_RE.fullmatch(value):
            raise CommandError(f"{option} {value!r}: use {SEGMENT_RULE}")
    if args.commit is not None and not COMMIT_RE.fullmatch(args.commit):
        raise CommandError(f"--commit {args.commit!r}: not a commit SHA (4 to 64 hex digits)")


def _dag_entry(spec: str) -> dict:
    dag_id, separator, uri = spec.partition("=")
    if not separator or not dag_id or not uri.startswith("s3://"):
        raise CommandError(f"--dag {spec!r}: expected DAG_ID=s3://bucket/key.py")
    return {"dag_id": dag_id, "dag_file": uri}


def _request_file(path: str) -> dict:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        document = json.loads(text)
    except OSError as error:
        raise CommandError(f"--request {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise CommandError(f"--request {path} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise CommandError(f"--request {path}: expected a JSON object (a request, or a request's body)")
    # A whole request (the original contract) or only its body.
    return dict(document) if "body" in document else {"body": document}


def submitted_request(args: argparse.Namespace) -> dict:
    """The request `submit` sends: the --dag entries or the --request file, with the command line's names."""
    _checked_names(args)
    if args.request:
        request = _request_file(args.request)
    else:
        request = {"body": {"dags": [_dag_entry(spec) for spec in args.dag]}}
    names = {"astroWorkspace": args.workspace, "astroDeployment": args.deployment, "repo": args.repo,
             "commit": args.commit}
    request.update({key: value for key, value in names.items() if value is not None})
    request = _with_options(request, args)
    missing = [option for key, option in (("astroWorkspace", "--workspace"), ("astroDeployment", "--deployment"),
                                          ("repo", "--repo")) if not request.get(key)]
    if missing:
        raise CommandError(f"{', '.join(missing)} missing (not in the command line nor in the request file)")
    return request


def submit(args: argparse.Namespace) -> int:
    request = submitted_request(args)
    return start_and_follow(ApiClient.from_args(args), request, args)


def _artifacts_location(uri: str) -> tuple[str, str]:
    match = _ARTIFACTS_RE.fullmatch(uri)
    if not match:
        raise CommandError(f"--artifacts {uri!r}: expected s3://BUCKET or s3://BUCKET/PREFIX (at most 512 "
                           "characters, no control characters)")
    return match[1], (match[2] or "").strip("/")


def pushed_location(args: argparse.Namespace) -> tuple[str, str]:
    """The bucket and key prefix `push` uploads under: PREFIX/<repo>/<commit, else a new timestamp>."""
    _checked_names(args)
    bucket, prefix = _artifacts_location(args.artifacts)
    # Per commit: a re-run of one commit writes the same keys; without one, every push gets its own.
    run = args.commit or f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    return bucket, "/".join(part for part in (prefix, args.repo, run) if part)


def _with_options(request: dict, args: argparse.Namespace) -> dict:
    """--dry-run and --force, as the request's dry_run and force (sent only when set)."""
    options = {"dry_run": args.dry_run, "force": args.force}
    return {**request, **{key: True for key, value in options.items() if value}}


def pushed_request(args: argparse.Namespace, bucket: str, key_prefix: str) -> dict:
    """The request `push` sends: Parse lists the uploaded folder and finds the DAG files in it."""
    request = {"astroWorkspace": args.workspace, "astroDeployment": args.deployment, "repo": args.repo}
    if args.commit:
        request["commit"] = args.commit
    return _with_options({**request, "body": {"source_prefix": f"s3://{bucket}/{key_prefix}/"}}, args)


def push(args: argparse.Namespace) -> int:
    bucket, key_prefix = pushed_location(args)
    folder: Path = args.dir
    if not folder.is_dir():
        raise CommandError(f"{folder} is not a folder")
    paths = folder_files(folder)
    if not paths:
        raise CommandError(f"{folder} holds no files to deploy")
    api = ApiClient.from_args(args)
    # boto3 reads AWS_ENDPOINT_URL itself: the same command uploads to a local S3-compatible endpoint.
    s3 = boto3.client("s3")
    try:
        upload_files(folder, paths, lambda path, content: s3.put_object(
            Bucket=bucket, Key=f"{key_prefix}/{path}", Body=content))
    except (BotoCoreError, ClientError) as error:
        raise CommandError(f"cannot upload to s3://{bucket}/{key_prefix}/: {error}") from None
    print(f"Uploaded {len(paths)} files to s3://{bucket}/{key_prefix}/ (Parse finds the DAG files among them)",
          flush=True)
    return start_and_follow(api, pushed_request(args, bucket, key_prefix), args)


def status(args: argparse.Namespace) -> int:
    api = ApiClient.from_args(args)
    write_github_output(args.github_output, execution_name=args.name)
    if args.wait:
        return _finish(args, follow(api, args.name, args.poll_interval, args.timeout, sys.stdout, sys.stderr))
    answer = api.status(args.name)
    if answer.get("status") == RUNNING:
        print(f"{printable(answer.get('name'))} RUNNING (in {printable(answer.get('state') or '?')})")
    else:
        print_outcome(answer, sys.stdout)
    print(f"  States:  {' > '.join(printable(state) for state in answer.get('states') or []) or '(none yet)'}")
    print(f"  Started: {printable(answer.get('startDate'))}")
    if answer.get("stopDate"):
        print(f"  Stopped: {printable(answer['stopDate'])}")
    print(f"  Console: {printable(answer.get('consoleUrl'))}")
    return _finish(args, answer)


def print_targets(targets: dict, out: TextIO) -> None:
    where = f"{printable(targets.get('workspace'))}/{printable(targets.get('deployment'))}"
    print(f"{where} (Astro deployment {printable(targets.get('deploymentId') or '?')})", file=out)
    for repo in targets.get("repos") or []:
        stale = "" if repo.get("inLastShip") else "  [not confirmed by the Dag bundle's last ship]"
        print(f"  {printable(repo.get('repo'))}: commit {printable(repo.get('commit') or '(none)')}, deployed "
              f"{printable(repo.get('deployedAt'))} by {printable(repo.get('execution'))}, Dag bundle "
              f"{printable(repo.get('bundle'))} version {printable(repo.get('bundleVersion'))}, "
              f"{printable(repo.get('files'))} files{stale}", file=out)
        for dag in repo.get("dags") or []:
            print(f"      {printable(dag.get('dagId'))}  ({printable(dag.get('path'))})", file=out)
    for bundle in targets.get("bundles") or []:
        confirmed = (f"shipped, version {printable(bundle.get('version'))}" if bundle.get("state") == "shipped"
                     else "NOT CONFIRMED by Astro (it may hold that ship or the one before)")
        print(f"  Dag bundle {printable(bundle.get('bundle'))}: last ship by {printable(bundle.get('execution'))} "
              f"(repo {printable(bundle.get('repo'))}), {confirmed}; repos: {_names(bundle.get('repos'))}", file=out)


def targets(args: argparse.Namespace) -> int:
    for option, value in (("WORKSPACE", args.workspace), ("DEPLOYMENT", args.deployment)):
        if not SEGMENT_RE.fullmatch(value):
            raise CommandError(f"{option} {value!r}: use {SEGMENT_RULE}")
    answer = ApiClient.from_args(args).targets(args.workspace, args.deployment)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print_targets(answer, sys.stdout)
    return EXIT_SUCCEEDED


def _run(command: str, action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command's `run(args) -> int`: its errors end it with a message, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except CommandError as error:
            print(f"astro-dag-deploy {command}: error: {error}", file=sys.stderr)
            return EXIT_ERROR
        except BotoCoreError as error:
            # The AWS configuration: a missing profile, expired SSO session, unreadable credentials file...
            print(f"astro-dag-deploy {command}: error: AWS configuration: {error}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"astro-dag-deploy {command}: interrupted (a started execution goes on)", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run


run_submit = _run("submit", submit)
run_push = _run("push", push)
run_status = _run("status", status)
run_targets = _run("targets", targets)


# ---- command line ----


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return seconds


def _api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", required=True, metavar="URL",
                        help="the API's URL with its stage, e.g. "
                        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    parser.add_argument("--region", help="the API's region, to sign with (default: from an execute-api URL, "
                                         "else AWS_REGION or the profile's region)")


def _wait_arguments(parser: argparse.ArgumentParser, wait_help: str) -> None:
    parser.add_argument("--wait", action="store_true", help=wait_help)
    parser.add_argument("--timeout", type=_positive_seconds, metavar="S",
                        help="with --wait: stop waiting after S seconds, exit 3 (default: until it ends)")
    parser.add_argument("--poll-interval", type=_positive_seconds, default=DEFAULT_POLL_SECONDS, metavar="S",
                        help=f"with --wait: seconds between status requests (default: {DEFAULT_POLL_SECONDS:g})")
    parser.add_argument("--github-output", type=Path, metavar="FILE",
                        help="append execution-name=, status=, dag-bundle= and dag-bundle-version= lines to FILE, as a GitHub "
                        "Actions step's outputs (pass \"$GITHUB_OUTPUT\")")


def _target_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--workspace", required=required, help="the Astro workspace name")
    parser.add_argument("--deployment", required=required, help="the Astro deployment name")
    parser.add_argument("--repo", required=required,
                        help="the repo the DAGs come from (their folder in the deployment)")
    parser.add_argument("--commit", metavar="SHA", help="the commit deployed (in the execution's name)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run every check and print the diff against what is live; change nothing (exit 1 on "
                        "problems: a pull-request check)")
    parser.add_argument("--force", action="store_true",
                        help="ship even when the files are identical to what is live")


WAIT_HELP = ("follow the execution, printing each state as it is entered (stderr); exit 0 on SUCCEEDED, 1 on "
             "FAILED, TIMED_OUT or ABORTED")


def register_client_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add `submit`, `push`, `status` and `targets` to the command's sub-parsers."""
    submit_parser = subparsers.add_parser(
        "submit",
        help="start a deploy through the API (SigV4-signed) from DAG files already in S3",
        description="Start a deploy through the API with a request of DAG files already in an allow-listed bucket. "
        "Prints the execution's name and console link. " + EXIT_CODES_HELP,
    )
    _api_arguments(submit_parser)
    _target_arguments(submit_parser, required=False)
    files = submit_parser.add_mutually_exclusive_group(required=True)
    files.add_argument("--dag", action="append", metavar="ID=s3://BUCKET/KEY.py",
                       help="a DAG file and its dag_id (repeat for each DAG)")
    files.add_argument("--request", metavar="FILE",
                       help="a JSON file holding the request (or its body); '-' reads stdin. The command line's "
                       "--workspace, --deployment, --repo and --commit replace its values")
    _wait_arguments(submit_parser, WAIT_HELP)
    submit_parser.set_defaults(run=run_submit)

    push_parser = subparsers.add_parser(
        "push",
        help="upload a DAG folder to S3 and deploy it through the API: one command for a CI job",
        description="Upload every file of DIR (without __pycache__, *.pyc and .git) to "
        "s3://BUCKET/PREFIX/<repo>/<commit, else a timestamp>/, then start a deploy of that folder: the Parse "
        "step finds the DAG files in it and refuses the deploy, naming the file, if a .py file does not compile. "
        "AWS_ENDPOINT_URL is honoured for S3. " + EXIT_CODES_HELP,
    )
    push_parser.add_argument("dir", type=Path, metavar="DIR", help="the folder of DAG files (the repo's dags folder)")
    push_parser.add_argument("--artifacts", required=True, metavar="s3://BUCKET/PREFIX",
                             help="where to upload the files: an allow-listed source bucket (sourceBuckets)")
    _api_arguments(push_parser)
    _target_arguments(push_parser, required=True)
    _wait_arguments(push_parser, WAIT_HELP)
    push_parser.set_defaults(run=run_push)

    status_parser = subparsers.add_parser(
        "status",
        help="print how a deploy execution is doing or how it ended",
        description="Print an execution's status, the state it is in or failed at, error and cause. "
        + EXIT_CODES_HELP,
    )
    status_parser.add_argument("name", metavar="NAME", help="the execution's name (printed by submit and push)")
    _api_arguments(status_parser)
    _wait_arguments(status_parser, "follow the execution until it ends, printing each state as it is entered (stderr)")
    status_parser.set_defaults(run=run_status)

    targets_parser = subparsers.add_parser(
        "targets",
        help="print what is live in a deployment: each repo's commit, DAGs, Dag bundle and version",
        description="Print what the last successful deploys of each repo shipped to WORKSPACE/DEPLOYMENT: commit, "
        "execution, time, DAGs with their files, the Dag bundle and the version Astro answered, and each bundle's "
        "last ship. Exit codes: 0 printed; 2 usage, credentials, HTTP error or nothing deployed there (404).",
    )
    targets_parser.add_argument("workspace", metavar="WORKSPACE", help="the Astro workspace name")
    targets_parser.add_argument("deployment", metavar="DEPLOYMENT", help="the Astro deployment name")
    targets_parser.add_argument("--json", action="store_true", help="print the API's JSON answer as it is")
    _api_arguments(targets_parser)
    targets_parser.set_defaults(run=run_targets)
