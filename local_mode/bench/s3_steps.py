"""The S3 steps against the AWS CLI: Upload vs `aws s3 cp --recursive`, ClearPrefix vs `aws s3 rm --recursive`.

Both sides copy the same source objects into (or delete) the same repo prefix of a versioned DAG bucket, on the
same moto server. Our side is the step's handler called in this process with real boto3 over HTTP; the peer is
the AWS CLI in its own process, as a CI job would run it (so its start-up is part of its time). Whatever a run
needs beforehand (an empty or a full prefix, the stored plan) is done before the clock starts.
"""

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

from local_mode.bench.dag_files import DagFile
from local_mode.bench.s3_server import CountingS3Server
from local_mode.lambda_seam import LocalLambdaContext
from local_mode.output import stdout_to_file
from local_mode.world import environment_variables

from functions.clear_prefix.app import handler as clear_prefix_handler
from functions.parse.planning import summarize
from functions.shared.aws import forget_clients as forget_step_clients
from functions.shared.paths import repo_prefix
from functions.shared.plan_store import Plan, PlannedFile, save_plan
from functions.upload.app import handler as upload_handler

REGION = "us-east-1"
SOURCE_BUCKET = "bench-ci-artifacts"
DAG_BUCKET = "bench-dag-bucket"
WORKSPACE, DEPLOYMENT, REPO = "bench", "production", "bench_repo"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
LIST_PAGE = 1000  # keys per ListObjectsV2 page, and per DeleteObjects batch
SETUP_WORKERS = 32
CLI_TIMEOUT_SECONDS = 900
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
UPLOAD, CLEAR_PREFIX = "upload", "clear_prefix"


@dataclass(frozen=True)
class StepRun:
    seconds: float
    requests: dict[str, int]  # S3 requests the server answered during the run, by operation
    server_cpu_seconds: float  # the CPU time the server spent meanwhile

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())


@dataclass
class StepComparison:
    step: str
    size: int
    minimum_requests: int
    ours: list[StepRun] = field(default_factory=list)
    peer: list[StepRun] = field(default_factory=list)


def minimum_requests(step: str, size: int) -> int:
    """The fewest S3 requests that can do the step: a copy per file; a listed page per 1,000 keys, and a batch delete
    per 1,000 of the keys and the repo's archive."""
    if step == UPLOAD:
        return size
    return max(1, math.ceil(size / LIST_PAGE)) + math.ceil((size + 1) / LIST_PAGE)


def aws_cli() -> Path:
    """The AWS CLI installed beside this interpreter (the project pins its version in the dev extras)."""
    executable = Path(sys.executable).parent / "aws"
    if not executable.exists():
        raise RuntimeError(f"no AWS CLI next to {Path(sys.executable).name}: install the project's dev extras "
                           "(`pip install -e '.[dev]'`, which pins awscli)")
    return executable


class S3StepBench:
    """Our S3 steps and the AWS CLI against one counting moto server; `compare(files, runs)` per N."""

    def __init__(self, server: CountingS3Server, progress: Callable[[str], None]):
        self.server = server
        self.progress = progress
        self.s3 = boto3.client(
            "s3", endpoint_url=server.endpoint_url, region_name=REGION,
            aws_access_key_id="bench", aws_secret_access_key="bench", aws_session_token="bench",
            config=Config(max_pool_connections=SETUP_WORKERS),
        )
        self.cli = aws_cli()
        self.cli_environment = {
            **{name: value for name, value in os.environ.items() if name not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")},
            **FAKE_CREDENTIALS,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
        self.prefix = repo_prefix(WORKSPACE, DEPLOYMENT, REPO)
        self.context = LocalLambdaContext(
            function_name="bench", memory_limit_in_mb=512, timeout_seconds=900,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:bench",
        )
        self.s3.create_bucket(Bucket=SOURCE_BUCKET)
        self.s3.create_bucket(Bucket=DAG_BUCKET)
        # Versioned, as the stack makes it: a delete adds a marker, a copy a version.
        self.s3.put_bucket_versioning(Bucket=DAG_BUCKET, VersioningConfiguration={"Status": "Enabled"})

    @contextmanager
    def step_environment(self) -> Iterator[None]:
        """What the deployed functions see, with the endpoint pointed at the server (clients made anew)."""
        variables = {
            **FAKE_CREDENTIALS, "AWS_PROFILE": None, "AWS_ENDPOINT_URL": self.server.endpoint_url,
            "DAG_BUCKET": DAG_BUCKET, "POWERTOOLS_METRICS_NAMESPACE": "AstroDagDeploy", "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        with environment_variables(variables):
            forget_step_clients()
            try:
                yield
            finally:
                forget_step_clients()

    # ---- setup, outside the clock ----

    def _in_parallel(self, work: Callable, items: list) -> list:
        with ThreadPoolExecutor(max_workers=SETUP_WORKERS) as pool:
            return list(pool.map(work, items))

    def put_sources(self, files: list[DagFile]) -> tuple[str, list[PlannedFile]]:
        """Store the files as a CI job would; return their folder and the plan entries Parse would make."""
        source_prefix = f"ci/{REPO}/n{len(files)}/"

        def put(file: DagFile) -> PlannedFile:
            key = source_prefix + file.path
            response = self.s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=file.body)
            return PlannedFile(source_bucket=SOURCE_BUCKET, source_key=key, etag=response["ETag"],
                               size=len(file.body), path=file.path, kind="dag", dag_ids=[file.dag_id])

        return source_prefix, self._in_parallel(put, files)

    def prefix_keys(self) -> list[str]:
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=DAG_BUCKET, Prefix=self.prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def empty_prefix(self) -> None:
        keys = self.prefix_keys()
        for start in range(0, len(keys), LIST_PAGE):
            batch = [{"Key": key} for key in keys[start:start + LIST_PAGE]]
            self.s3.delete_objects(Bucket=DAG_BUCKET, Delete={"Objects": batch, "Quiet": True})

    def fill_prefix(self, entries: list[PlannedFile]) -> None:
        self._in_parallel(
            lambda entry: self.s3.copy_object(
                Bucket=DAG_BUCKET, Key=self.prefix + entry.path,
                CopySource={"Bucket": entry.source_bucket, "Key": entry.source_key},
            ),
            entries,
        )

    def expect_prefix(self, count: int, what: str) -> None:
        found = len(self.prefix_keys())
        if found != count:
            raise RuntimeError(f"{what}: the prefix holds {found} objects, expected {count}")

    # ---- the timed runs ----

    def _timed(self, run: Callable[[], object]) -> StepRun:
        self.server.take_usage()
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        usage = self.server.take_usage()
        return StepRun(seconds=seconds, requests=usage.requests, server_cpu_seconds=usage.cpu_seconds)

    def _run_cli(self, *arguments: str) -> None:
        completed = subprocess.run(
            [str(self.cli), "s3", *arguments, "--endpoint-url", self.server.endpoint_url, "--only-show-errors"],
            env=self.cli_environment, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"aws s3 {arguments[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}")

    def _call_handler(self, handler: Callable, state: dict) -> dict:
        # Handlers log and emit metrics on stdout; the table goes there too.
        with stdout_to_file(Path(os.devnull)):
            return handler(state, self.context)

    def _state(self, entries: list[PlannedFile], execution: str) -> dict:
        """Parse's output for a plan of these files, the plan stored where Upload reads it."""
        plan = Plan(workspace=WORKSPACE, deployment=DEPLOYMENT, repo=REPO, commit=COMMIT, execution=execution,
                    prefix=self.prefix, files=entries)
        return summarize(plan, save_plan(DAG_BUCKET, plan), []).to_json()

    def compare(self, files: list[DagFile], runs: int) -> list[StepComparison]:
        size = len(files)
        upload = StepComparison(UPLOAD, size, minimum_requests(UPLOAD, size))
        clear = StepComparison(CLEAR_PREFIX, size, minimum_requests(CLEAR_PREFIX, size))
        with self.step_environment():
            source_prefix, entries = self.put_sources(files)
            source_uri, target_uri = f"s3://{SOURCE_BUCKET}/{source_prefix}", f"s3://{DAG_BUCKET}/{self.prefix}"
            for run in range(1, runs + 1):
                self.progress(f"N={size} run {run}/{runs}: Upload vs aws s3 cp, ClearPrefix vs aws s3 rm")
                state = self._state(entries, execution=f"bench-n{size}-run{run}")
                ours_first = run % 2 == 1  # alternate, so that neither side always runs on a fresher server

                def ours_upload() -> None:
                    self.empty_prefix()
                    upload.ours.append(self._timed(lambda: self._call_handler(upload_handler, state)))
                    self.expect_prefix(size, "after our Upload")

                def peer_upload() -> None:
                    self.empty_prefix()
                    upload.peer.append(self._timed(lambda: self._run_cli("cp", "--recursive", source_uri, target_uri)))
                    self.expect_prefix(size, "after aws s3 cp")

                def ours_clear() -> None:
                    self.fill_prefix(entries)
                    clear.ours.append(self._timed(lambda: self._call_handler(clear_prefix_handler, state)))
                    self.expect_prefix(0, "after our ClearPrefix")

                def peer_clear() -> None:
                    self.fill_prefix(entries)
                    clear.peer.append(self._timed(lambda: self._run_cli("rm", "--recursive", target_uri)))
                    self.expect_prefix(0, "after aws s3 rm")

                for measure in (ours_upload, peer_upload) if ours_first else (peer_upload, ours_upload):
                    measure()
                for measure in (ours_clear, peer_clear) if ours_first else (peer_clear, ours_clear):
                    measure()
            self.empty_prefix()
        return [upload, clear]
