"""Ships in the local mode: what gathering a bundle costs as a deployment grows in repos, and bursts of pushes to
one deployment (issue 15).

Gathering: one deployment of 1 repo and one of 10, every repo the same number of DAG files, each repo pushed once
so that its prefix exists and a ship has archived it; then the first repo is pushed again with every file changed,
and the Deploy state is timed (gathering the bundle, archiving the changed repo, and the stand-in CLI's run) and its
S3 GETs counted. Three ways: in a warm environment, which kept the last ship's bundle (the changed repo read object
by object, the others left in place); in a new environment each time, with the repo archives (the others each from
its archive); and in a new environment without archives (removed and not written: how Deploy gathered before them).

Bursts: N repos push to one deployment at the same moment (every artifact uploaded first, then every execution
started back to back), with a stand-in CLI whose upload takes a few seconds: the wall time until the last
execution ends, the CLI runs, and the executions that did not succeed.
"""

import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

from local_mode.astro_standin import read_invocations
from local_mode.bench.dag_files import DagFile, dag_files, write_dag_files
from local_mode.executions import ExecutionResult, watch_execution
from local_mode.output import stdout_to_file
from local_mode.scenario import ScenarioRequest, upload_dags_dir
from local_mode.world import LocalWorld
from functions.deploy import bundling  # importable once local_mode is loaded
from functions.shared.execution_names import execution_name
from functions.shared.execution_state import RepoArchive
from functions.shared.paths import ARCHIVES_ROOT, DAGS_ROOT, deployment_prefix, repo_archive_key

WORKSPACE = "bench"
KEPT_BUNDLE, ARCHIVES, OBJECT_BY_OBJECT = "kept bundle", "archives", "object by object"
GATHER_MODES = (KEPT_BUNDLE, ARCHIVES, OBJECT_BY_OBJECT)
BURST_FILES_PER_REPO = 3
BURST_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ShipPlan:
    """What to measure: the (repos, files per repo) shapes to gather, and the burst sizes with their CLI's time."""

    gather_shapes: tuple[tuple[int, int], ...]
    gather_runs: int
    burst_sizes: tuple[int, ...]
    cli_seconds: float


FULL = ShipPlan(gather_shapes=((1, 200), (10, 200)), gather_runs=3, burst_sizes=(1, 5, 20, 50), cli_seconds=5.0)
# The same code paths in well under a minute (the tests' smoke run).
QUICK = ShipPlan(gather_shapes=((1, 20), (3, 20)), gather_runs=1, burst_sizes=(1, 2), cli_seconds=1.0)


@dataclass(frozen=True)
class GatherRun:
    repos: int
    files_per_repo: int
    mode: str  # one of GATHER_MODES
    deploy_seconds: list[float]  # the Deploy state's time, per run
    deploy_gets: int  # S3 GETs of DAG files and archives made while Deploy ran (the most of any run)
    # The stand-in CLI's run within each Deploy (from its invocation log): the upload of the bytes, the floor.
    cli_seconds: list[float]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.deploy_seconds)

    @property
    def median_seconds_without_cli(self) -> float:
        return statistics.median(deploy - cli for deploy, cli in zip(self.deploy_seconds, self.cli_seconds))


@dataclass(frozen=True)
class BurstRun:
    pushes: int
    cli_seconds: float
    wall_seconds: float  # from the first start until the last execution ended
    cli_runs: int
    failed: dict[str, int]  # executions that did not succeed, by error


@dataclass(frozen=True)
class ShipResults:
    plan: ShipPlan
    gathering: list[GatherRun]
    bursts: list[BurstRun]


class GetRecorder:
    """When each S3 GET of a DAG file or a repo archive was made, by any step (Deploy's read of its plan, to record
    what is live, is not gathering)."""

    def __init__(self, world: LocalWorld):
        self.bucket = world.dag_bucket
        self.times: list[float] = []
        self._lock = threading.Lock()
        world.client("s3").meta.events.register("provide-client-params.s3.GetObject", self._record)

    def _record(self, params: dict, **_) -> None:
        if params.get("Bucket") == self.bucket and params["Key"].startswith((DAGS_ROOT, ARCHIVES_ROOT)):
            with self._lock:
                self.times.append(time.time())

    def between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for moment in self.times if start <= moment <= end)


@contextmanager
def archives_withheld(world: LocalWorld, deployment: str) -> Iterator[None]:
    """Remove the deployment's archives and write none: Deploy gathers object by object, as before archives."""
    s3 = world.client("s3")
    prefix = ARCHIVES_ROOT + deployment_prefix(WORKSPACE, deployment).removeprefix("dags/")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=world.dag_bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=world.dag_bucket, Key=item["Key"])

    def not_written(bucket: str, workspace: str, deployment: str, repo: str, files: object) -> RepoArchive:
        return RepoArchive(key=repo_archive_key(workspace, deployment, repo), written=False, error="withheld")

    # The handlers run in this process: no zip is made either, so the figure is the gathering alone.
    with mock.patch.object(bundling, "refresh_repo_archive", not_written):
        yield


def _repo_files(repos: int, files_per_repo: int) -> list[list[DagFile]]:
    """Every repo's files, of its own (distinct DAG ids)."""
    files = dag_files(repos * files_per_repo)
    return [files[number * files_per_repo:(number + 1) * files_per_repo] for number in range(repos)]


def _repo_input(world: LocalWorld, folder: Path, deployment: str, repo: str, files: list[DagFile]) -> dict:
    """The repo's execution input, its artifacts (`files`) uploaded."""
    dags_dir = folder / deployment / repo
    shutil.rmtree(dags_dir, ignore_errors=True)
    write_dag_files(dags_dir, files)
    request = ScenarioRequest(workspace=WORKSPACE, deployment=deployment, repo=repo, dags_dir=dags_dir,
                              event=None, expect="SUCCEEDED")
    return upload_dags_dir(world.client("s3"), world.artifacts_bucket, request, world.next_run_id())


def _repo_inputs(world: LocalWorld, folder: Path, deployment: str, repos: int, files_per_repo: int) -> list[dict]:
    return [_repo_input(world, folder, deployment, f"repo_{number:02}", files)
            for number, files in enumerate(_repo_files(repos, files_per_repo))]


def _changed(files: list[DagFile], push: int) -> list[DagFile]:
    """The files of another commit: every one changed, so that the push makes the repo's archive stale."""
    return [replace(file, text=f"{file.text}\n# push {push}\n") for file in files]


def _run(world: LocalWorld, execution_input: dict) -> ExecutionResult:
    arn = world.start_execution(execution_input, execution_name(execution_input["repo"], None, world.next_run_id()))
    result = watch_execution(world, arn)
    if result.status != "SUCCEEDED":
        raise RuntimeError(f"execution {result.name} ended {result.status} at {result.failed_state}: {result.error}: "
                           f"{result.cause}")
    return result


@dataclass(frozen=True)
class TimedDeploy:
    seconds: float
    gets: int
    cli_seconds: float


def _timed_deploy(world: LocalWorld, gets: GetRecorder, execution_input: dict) -> TimedDeploy:
    result = _run(world, execution_input)
    [deploy] = [visit for visit in result.visits if visit.name == "Deploy"]
    entered, exited = deploy.entered.timestamp(), deploy.exited.timestamp()
    [cli] = [run for run in read_invocations(world.astro_state_dir) if entered <= run["start"] <= exited]
    return TimedDeploy(seconds=deploy.seconds or 0.0, gets=gets.between(entered, exited),
                       cli_seconds=cli["end"] - cli["start"])


def measure_gathering(world: LocalWorld, folder: Path, plan: ShipPlan, progress: Callable[[str], None]
                      ) -> list[GatherRun]:
    gets = GetRecorder(world)
    runs = []
    for repos, files_per_repo in plan.gather_shapes:
        deployment = f"gather-{repos}x{files_per_repo}"
        progress(f"Gathering {repos} x {files_per_repo} files: pushing every repo once")
        repo_files = _repo_files(repos, files_per_repo)
        for number, files in enumerate(repo_files):
            _run(world, _repo_input(world, folder, deployment, f"repo_{number:02}", files))
        pushes = 0
        for mode in GATHER_MODES:
            progress(f"Gathering {repos} x {files_per_repo} files, {mode}: {plan.gather_runs} pushes of one repo")
            measured = []
            for _ in range(plan.gather_runs):
                pushes += 1
                pushed = _repo_input(world, folder, deployment, "repo_00", _changed(repo_files[0], pushes))
                if mode != KEPT_BUNDLE:
                    world.new_deploy_environment()
                if mode == OBJECT_BY_OBJECT:
                    with archives_withheld(world, deployment):
                        measured.append(_timed_deploy(world, gets, pushed))
                else:
                    measured.append(_timed_deploy(world, gets, pushed))
            runs.append(GatherRun(repos=repos, files_per_repo=files_per_repo, mode=mode,
                                  deploy_seconds=[run.seconds for run in measured],
                                  deploy_gets=max(run.gets for run in measured),
                                  cli_seconds=[run.cli_seconds for run in measured]))
    return runs


def wait_for_all(world: LocalWorld, arns: list[str]) -> list[dict]:
    """Each execution's description once it has ended. A poll is one listing of the machine's running executions,
    then one description of each execution that left it: a description of every execution at every poll took half
    the process's CPU from the executions themselves at N = 50 (profiled with py-spy)."""
    sfn = world.client("stepfunctions")
    waiting = set(arns)
    ended: dict[str, dict] = {}
    while waiting:
        time.sleep(BURST_POLL_SECONDS)
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=world.state_machine_arn,
                                                               statusFilter="RUNNING")
        running = {execution["executionArn"] for page in pages for execution in page["executions"]}
        for arn in waiting - running:
            ended[arn] = sfn.describe_execution(executionArn=arn)
        waiting &= running
    return [ended[arn] for arn in arns]


def measure_bursts(world: LocalWorld, folder: Path, plan: ShipPlan, progress: Callable[[str], None]
                   ) -> list[BurstRun]:
    bursts = []
    for pushes in plan.burst_sizes:
        deployment = f"burst-n{pushes}"
        inputs = _repo_inputs(world, folder, deployment, pushes, BURST_FILES_PER_REPO)
        progress(f"Burst of {pushes} pushes to one deployment, CLI of {plan.cli_seconds:g} s")
        started = time.perf_counter()
        arns = [world.start_execution(execution_input, execution_name(execution_input["repo"], None,
                                                                      world.next_run_id()))
                for execution_input in inputs]
        ended = wait_for_all(world, arns)
        wall = time.perf_counter() - started
        failed: dict[str, int] = {}
        for description in ended:
            if description["status"] != "SUCCEEDED":
                error = description.get("error") or description["status"]
                failed[error] = failed.get(error, 0) + 1
        cli_runs = sum(1 for ship in read_invocations(world.astro_state_dir)
                       if ship["deployment_id"] == f"local-{deployment}")
        bursts.append(BurstRun(pushes=pushes, cli_seconds=plan.cli_seconds, wall_seconds=wall, cli_runs=cli_runs,
                               failed=failed))
    return bursts


def measure_ships(plan: ShipPlan, progress: Callable[[str], None]) -> ShipResults:
    """Both measurements, each in a local world of its own (the bursts' stand-in CLI is slowed down)."""
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-ships-") as scratch:
        folder = Path(scratch)
        progress("Creating the stack in the local mode for the ships")
        # The handlers' logs and metrics go to a scratch file: stdout carries the table.
        with stdout_to_file(folder / "handlers.log"):
            with LocalWorld(folder / "gather-world") as world:
                gathering = measure_gathering(world, folder / "gather", plan, progress)
            with LocalWorld(folder / "burst-world", standin_upload_seconds=plan.cli_seconds) as world:
                bursts = measure_bursts(world, folder / "burst", plan, progress)
    return ShipResults(plan=plan, gathering=gathering, bursts=bursts)
