"""Whole executions in the local mode: wall time, and the state transitions Standard workflows bill."""

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local_mode.bench.dag_files import dag_files, write_dag_files
from local_mode.executions import execution_history, watch_execution
from local_mode.output import stdout_to_file
from local_mode.scenario import ScenarioRequest, upload_dags_dir
from local_mode.world import LocalWorld
from functions.shared.execution_names import execution_name  # importable once local_mode is loaded

WORKSPACE, REPO = "bench", "bench_repo"


@dataclass(frozen=True)
class ExecutionRun:
    seconds: float  # from StartExecution until the end was seen
    transitions: int  # states entered (Standard workflows bill each one)
    state_seconds: dict[str, float]  # time spent in each state, by name


def state_transitions(history: list[dict]) -> int:
    return sum(1 for event in history if event["type"].endswith("StateEntered"))


def measure_executions(runs_by_size: dict[int, int], progress: Callable[[str], None]) -> dict[int, list[ExecutionRun]]:
    """Run the local mode's state machine with N DAG files, as many times as asked for each N.

    Each N deploys to its own Astro deployment, so every Deploy ships exactly N files. The DAG files are stored in
    the artifacts bucket once per N, as a CI job would before calling the API; the clock covers the execution.
    """
    results: dict[int, list[ExecutionRun]] = {}
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-bench-") as scratch:
        folder = Path(scratch)
        progress("Creating the stack in the local mode (synthesizes the CDK app)")
        # The handlers' logs and metrics go to a scratch file: stdout carries the table.
        with stdout_to_file(folder / "handlers.log"), LocalWorld(folder / "world") as world:
            for size, runs in runs_by_size.items():
                dags_dir = folder / f"dags-n{size}"
                write_dag_files(dags_dir, dag_files(size))
                request = ScenarioRequest(
                    workspace=WORKSPACE, deployment=f"n{size}", repo=REPO, dags_dir=dags_dir, event=None,
                    expect="SUCCEEDED",
                )
                # Forced: every run ships, where the same files would be skipped as unchanged after the first.
                execution_input = {**upload_dags_dir(world.client("s3"), world.artifacts_bucket, request,
                                                     world.next_run_id()), "force": True}
                results[size] = []
                for run in range(1, runs + 1):
                    progress(f"N={size} run {run}/{runs}: a whole execution in the local mode")
                    name = execution_name(REPO, None, world.next_run_id())
                    started = time.perf_counter()
                    arn = world.start_execution(execution_input, name)
                    outcome = watch_execution(world, arn)
                    seconds = time.perf_counter() - started
                    if outcome.status != "SUCCEEDED":
                        raise RuntimeError(f"execution {name} with {size} DAG files ended {outcome.status} at "
                                           f"{outcome.failed_state}: {outcome.error}: {outcome.cause}")
                    state_seconds: dict[str, float] = {}
                    for visit in outcome.visits:
                        state_seconds[visit.name] = state_seconds.get(visit.name, 0.0) + (visit.seconds or 0.0)
                    transitions = state_transitions(execution_history(world, arn))
                    results[size].append(ExecutionRun(seconds, transitions, state_seconds))
    return results
