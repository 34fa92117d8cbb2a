"""Every measurement of the benchmark, for the sizes asked, in one call."""

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from local_mode.bench.cold_start import ColdStart, measure_cold_starts
from local_mode.bench.dag_files import dag_files
from local_mode.bench.executions import ExecutionRun, measure_executions
from local_mode.bench.s3_server import CountingS3Server
from local_mode.bench.s3_steps import S3StepBench, StepComparison
from local_mode.bench.ships import ShipPlan, ShipResults, measure_ships

DEFAULT_SIZES = (10, 100, 1000)
DEFAULT_RUNS = 5
# A whole execution with 1,000 files takes seconds in the local mode: half the runs keep the benchmark to minutes.
LARGE_EXECUTION = 1000


@dataclass(frozen=True)
class BenchResults:
    sizes: list[int]
    runs: int
    s3_steps: list[StepComparison]
    executions: dict[int, list[ExecutionRun]]
    cold_starts: list[ColdStart]
    ships: ShipResults
    load_before: float  # the machine's 1-minute load average, before and after: other work skews the figures
    load_after: float


def execution_runs(size: int, runs: int) -> int:
    return runs if size < LARGE_EXECUTION else max(1, math.ceil(runs / 2))


def run_benchmark(sizes: list[int], runs: int, ship_plan: ShipPlan, progress: Callable[[str], None]) -> BenchResults:
    load_before = os.getloadavg()[0]
    comparisons: list[StepComparison] = []
    progress("S3 steps against the AWS CLI, on a moto server on loopback")
    with CountingS3Server() as server:
        bench = S3StepBench(server, progress)
        for size in sizes:
            comparisons += bench.compare(dag_files(size), runs)
    executions = measure_executions({size: execution_runs(size, runs) for size in sizes}, progress)
    progress("Cold-start proxy of every zip function")
    cold_starts = measure_cold_starts(runs, progress)
    ships = measure_ships(ship_plan, progress)
    return BenchResults(
        sizes=list(sizes), runs=runs, s3_steps=comparisons, executions=executions, cold_starts=cold_starts,
        ships=ships, load_before=load_before, load_after=os.getloadavg()[0],
    )
