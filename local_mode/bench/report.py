"""The benchmark's table (Markdown, printed and kept in docs/benchmarks.md), its targets, and its JSON summary."""

import importlib.metadata
import os
import platform
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cdk.zip_assets import runtime_version
from local_mode.bench.s3_steps import CLEAR_PREFIX, UPLOAD, StepComparison, StepRun
from local_mode.bench.ships import ARCHIVES, GATHER_MODES, KEPT_BUNDLE, OBJECT_BY_OBJECT, QUICK, BurstRun, GatherRun, ShipResults
from local_mode.bench.suite import BenchResults

RESULTS_BEGIN = "<!-- benchmark results: written by `make bench`; what is between these markers is replaced -->"
RESULTS_END = "<!-- end of benchmark results -->"
VERSIONED_PACKAGES = ("moto", "boto3", "botocore", "awscli", "aws-lambda-powertools", "pydantic")
PEER_COMMANDS = {UPLOAD: "`aws s3 cp --recursive`", CLEAR_PREFIX: "`aws s3 rm --recursive`"}
STEP_NAMES = {UPLOAD: "Upload", CLEAR_PREFIX: "ClearPrefix"}

# The targets: ours / AWS CLI at the largest N, S3 requests over the minimum, a handler's import against
# `import boto3` alone.
UPLOAD_RATIO_TARGET = 1.0
CLEAR_RATIO_TARGET = 0.2
REQUESTS_OVER_MINIMUM_TARGET = 1.05
IMPORT_VS_BOTO3_TARGET = 1.25
# Issue 15: the largest deployment's gathering at most twice the one-repo deployment's; in a burst, at most 3 CLI
# runs whatever N, and the wall time within so many ships (one ship: the burst of 1) plus seconds, by N.
GATHER_RATIO_TARGET = 2.0
BURST_CLI_RUNS_TARGET = 3
BURST_WALL_TARGETS = {5: (3, 15.0), 20: (4, 20.0)}
# The burst that must not outwait the lock (lockMaxWaitMinutes, the default), and the error it would fail with.
LOCK_WAIT_BURST = 50
LOCK_WAIT_EXPIRED = "LockWaitExpired"


@dataclass(frozen=True)
class TargetCheck:
    target: str
    measured: str
    met: bool


def median_seconds(runs: list[StepRun]) -> float:
    return statistics.median(run.seconds for run in runs)


def most_requests(runs: list[StepRun]) -> StepRun:
    """The run with the most S3 requests: the figure that must stay near the minimum."""
    return max(runs, key=lambda run: run.request_count)


def speed_ratio(comparison: StepComparison) -> float:
    return median_seconds(comparison.ours) / median_seconds(comparison.peer)


def requests_over_minimum(comparison: StepComparison) -> float:
    return most_requests(comparison.ours).request_count / comparison.minimum_requests


def _comparison(results: BenchResults, step: str, size: int) -> StepComparison:
    return next(item for item in results.s3_steps if item.step == step and item.size == size)


def _transitions(results: BenchResults, size: int) -> int:
    return max(run.transitions for run in results.executions[size])


def summary(results: BenchResults) -> dict:
    """The benchmark's one-line JSON result; `n<N>` names the largest N measured (1000 by default)."""
    largest = max(results.sizes)
    return {
        f"upload_vs_awscli_n{largest}": round(speed_ratio(_comparison(results, UPLOAD, largest)), 3),
        f"clear_vs_awscli_n{largest}": round(speed_ratio(_comparison(results, CLEAR_PREFIX, largest)), 3),
        f"s3_requests_over_minimum_n{largest}": {
            step: round(requests_over_minimum(_comparison(results, step, largest)), 3)
            for step in (UPLOAD, CLEAR_PREFIX)
        },
        "transitions": {str(size): _transitions(results, size) for size in results.sizes},
        "import_ms": {cold.function: round(cold.median_import_ms, 1) for cold in results.cold_starts},
        "import_vs_boto3": {cold.function: round(cold.vs_boto3, 3) for cold in results.cold_starts},
        "gather_ratio": {mode: round(ratio, 3) for mode, ratio in gather_ratios(results.ships).items()},
        "gather_ratio_without_cli": {mode: round(ratio, 3)
                                     for mode, ratio in gather_ratios(results.ships, without_cli=True).items()},
        "bursts": {str(burst.pushes): {"wall_seconds": round(burst.wall_seconds, 1), "cli_runs": burst.cli_runs,
                                       "failed": sum(burst.failed.values())} for burst in results.ships.bursts},
    }


def _gather(ships: ShipResults, repos: int, mode: str) -> GatherRun:
    return next(run for run in ships.gathering if run.repos == repos and run.mode == mode)


def gather_shapes(ships: ShipResults) -> tuple[int, int]:
    """The fewest and the most repos measured."""
    repos = [run.repos for run in ships.gathering]
    return min(repos), max(repos)


def gather_ratios(ships: ShipResults, without_cli: bool = False) -> dict[str, float]:
    """By way of gathering: the Deploy state's median time with the most repos over the one with the fewest
    (`without_cli`: less the stand-in CLI's run, its upload of the bytes)."""
    fewest, most = gather_shapes(ships)

    def seconds(run: GatherRun) -> float:
        return run.median_seconds_without_cli if without_cli else run.median_seconds

    return {mode: seconds(_gather(ships, most, mode)) / seconds(_gather(ships, fewest, mode)) for mode in GATHER_MODES}


def one_ship_seconds(ships: ShipResults) -> float:
    return min(ships.bursts, key=lambda burst: burst.pushes).wall_seconds


def burst_wall_target(ships: ShipResults, burst: BurstRun) -> float | None:
    if burst.pushes not in BURST_WALL_TARGETS:
        return None
    count, seconds = BURST_WALL_TARGETS[burst.pushes]
    return count * one_ship_seconds(ships) + seconds


def check_targets(results: BenchResults) -> list[TargetCheck]:
    largest = max(results.sizes)
    upload = speed_ratio(_comparison(results, UPLOAD, largest))
    clear = speed_ratio(_comparison(results, CLEAR_PREFIX, largest))
    checks = [
        TargetCheck(f"Upload at N={largest}: ours / AWS CLI <= {UPLOAD_RATIO_TARGET}", f"{upload:.3f}",
                    upload <= UPLOAD_RATIO_TARGET),
        TargetCheck(f"ClearPrefix at N={largest}: ours / AWS CLI <= {CLEAR_RATIO_TARGET}", f"{clear:.3f}",
                    clear <= CLEAR_RATIO_TARGET),
    ]
    for step in (UPLOAD, CLEAR_PREFIX):
        over = requests_over_minimum(_comparison(results, step, largest))
        checks.append(TargetCheck(
            f"{STEP_NAMES[step]} at N={largest}: S3 requests / minimum <= {REQUESTS_OVER_MINIMUM_TARGET}",
            f"{over:.3f}", over <= REQUESTS_OVER_MINIMUM_TARGET,
        ))
    transitions = {size: {run.transitions for run in results.executions[size]} for size in results.sizes}
    distinct = set().union(*transitions.values())
    checks.append(TargetCheck(
        "State transitions per execution: the same for every N",
        ", ".join(f"N={size}: {'/'.join(map(str, sorted(values)))}" for size, values in transitions.items()),
        len(distinct) == 1,
    ))
    for cold in results.cold_starts:
        checks.append(TargetCheck(
            f"{cold.function}: import / `import boto3` <= {IMPORT_VS_BOTO3_TARGET}", f"{cold.vs_boto3:.3f}",
            cold.vs_boto3 <= IMPORT_VS_BOTO3_TARGET,
        ))
    return checks + ship_checks(results.ships)


def ship_checks(ships: ShipResults) -> list[TargetCheck]:
    fewest, most = gather_shapes(ships)
    files = ships.gathering[0].files_per_repo
    # The stand-in CLI's run is its copy of every file it receives: the upload of the bytes, the floor.
    ratio = gather_ratios(ships, without_cli=True)[KEPT_BUNDLE]
    checks = [TargetCheck(
        f"Gathering ({KEPT_BUNDLE}; Deploy state less the CLI's run, the floor): {most} x {files} files / "
        f"{fewest} x {files} <= {GATHER_RATIO_TARGET:g}",
        f"{ratio:.2f}", ratio <= GATHER_RATIO_TARGET,
    )]
    for burst in ships.bursts:
        checks.append(TargetCheck(
            f"Burst of {burst.pushes}, CLI of {burst.cli_seconds:g} s: CLI runs <= {BURST_CLI_RUNS_TARGET}",
            str(burst.cli_runs), burst.cli_runs <= BURST_CLI_RUNS_TARGET,
        ))
        target = burst_wall_target(ships, burst)
        if target is not None:
            count, seconds = BURST_WALL_TARGETS[burst.pushes]
            checks.append(TargetCheck(
                f"Burst of {burst.pushes}: wall <= {count} ships + {seconds:g} s = {target:.1f} s",
                f"{burst.wall_seconds:.1f} s", burst.wall_seconds <= target,
            ))
    waited = [burst for burst in ships.bursts if burst.pushes == LOCK_WAIT_BURST]
    checks.append(TargetCheck(
        f"Burst of {LOCK_WAIT_BURST} with default settings: no {LOCK_WAIT_EXPIRED}",
        f"{waited[0].failed.get(LOCK_WAIT_EXPIRED, 0)} {LOCK_WAIT_EXPIRED}" if waited else "not measured",
        bool(waited) and LOCK_WAIT_EXPIRED not in waited[0].failed,
    ))
    return checks


# ---- the table ----


def _count(value: int) -> str:
    return f"{value:,}"


def _requests(run: StepRun) -> str:
    parts = ", ".join(f"{_count(count)} {operation}" for operation, count in
                      sorted(run.requests.items(), key=lambda item: (-item[1], item[0])))
    return f"{_count(run.request_count)} ({parts})" if len(run.requests) > 1 else f"{_count(run.request_count)} {parts}"


def _runs(count: int, noun: str = "runs") -> str:
    return f"{count} {noun if count != 1 else noun[:-1]}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def machine_line(results: BenchResults) -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} cores ({cpu_model()}), {memory_gib:.1f} GiB memory, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}; 1-minute load average "
            f"{results.load_before:.1f} before, {results.load_after:.1f} after")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions_line() -> str:
    return ", ".join(f"{name} {importlib.metadata.version(name)}" for name in VERSIONED_PACKAGES)


def render(results: BenchResults, measured_at: datetime | None = None) -> str:
    measured_at = measured_at or datetime.now(timezone.utc)
    sizes = ",".join(str(size) for size in results.sizes)
    quick = " --quick" if results.ships.plan == QUICK else ""
    lines = [
        f"Measured {measured_at:%Y-%m-%d %H:%M} UTC by `python -m local_mode.bench --sizes {sizes} "
        f"--runs {results.runs}{quick}`.",
        "",
        f"- Machine: {machine_line(results)}.",
        f"- Versions: {versions_line()}.",
        "",
        f"### S3 steps against the AWS CLI (median of {_runs(results.runs)})",
        "",
        _row("N", "step vs AWS CLI", "ours (s)", "AWS CLI (s)", "ours / CLI", "our S3 requests", "minimum",
             "ours / minimum", "AWS CLI S3 requests", "server CPU, ours / CLI (s)"),
        _row("---:", "---", "---:", "---:", "---:", "---", "---:", "---:", "---", "---:"),
    ]
    for comparison in sorted(results.s3_steps, key=lambda item: (item.size, item.step != UPLOAD)):
        server_cpu = (statistics.median(run.server_cpu_seconds for run in comparison.ours),
                      statistics.median(run.server_cpu_seconds for run in comparison.peer))
        lines.append(_row(
            _count(comparison.size), f"{STEP_NAMES[comparison.step]} vs {PEER_COMMANDS[comparison.step]}",
            f"{median_seconds(comparison.ours):.3f}", f"{median_seconds(comparison.peer):.3f}",
            f"**{speed_ratio(comparison):.3f}**", _requests(most_requests(comparison.ours)),
            _count(comparison.minimum_requests), f"{requests_over_minimum(comparison):.3f}",
            _requests(most_requests(comparison.peer)), f"{server_cpu[0]:.2f} / {server_cpu[1]:.2f}",
        ))
    lines += [
        "",
        "### Whole executions in the local mode",
        "",
        _row("N", "runs", "wall time (s, median)", "state transitions", "time in each state (s, median)"),
        _row("---:", "---:", "---:", "---:", "---"),
    ]
    for size in results.sizes:
        runs = results.executions[size]
        states = list(dict.fromkeys(name for run in runs for name in run.state_seconds))
        per_state = ", ".join(
            f"{name} {statistics.median(run.state_seconds.get(name, 0.0) for run in runs):.2f}" for name in states
        )
        lines.append(_row(_count(size), len(runs), f"{statistics.median(run.seconds for run in runs):.2f}",
                          _transitions(results, size), per_state))
    lines += [
        "",
        f"### Cold-start proxy per zip function (median of "
        f"{_runs(results.runs, 'fresh Python {}.{} interpreters'.format(*runtime_version()))} each, handler and "
        "boto3 turn about, each pair at a random call depth)",
        "",
        _row("zip function", "import of `functions.<function>.app` (ms)", "`import boto3` alone (ms)",
             "handler / boto3", "asset zip (KB)"),
        _row("---", "---:", "---:", "---:", "---:"),
    ]
    for cold in results.cold_starts:
        lines.append(_row(cold.function, f"{cold.median_import_ms:.0f}", f"{cold.median_boto3_ms:.0f}",
                          f"**{cold.vs_boto3:.3f}**", f"{cold.zip_bytes / 1024:.1f}"))
    lines += ship_sections(results.ships)
    lines += ["", "### Targets", "", _row("target", "measured", "met"), _row("---", "---", "---")]
    for check in check_targets(results):
        lines.append(_row(check.target, check.measured, "yes" if check.met else "**no**"))
    return "\n".join(lines)


def ship_sections(ships: ShipResults) -> list[str]:
    runs = ships.plan.gather_runs
    lines = [
        "",
        f"### Gathering a bundle in the local mode (one repo pushed with every file changed; median of {_runs(runs)})",
        "",
        _row("repos x files", "gathered", "Deploy state (s)", "without the CLI's run (s)", "S3 GETs while Deploy ran"),
        _row("---", "---", "---:", "---:", "---:"),
    ]
    for run in sorted(ships.gathering, key=lambda item: (item.repos, GATHER_MODES.index(item.mode))):
        lines.append(_row(f"{run.repos} x {run.files_per_repo}", run.mode, f"{run.median_seconds:.2f}",
                          f"{run.median_seconds_without_cli:.2f}", _count(run.deploy_gets)))
    fewest, most = gather_shapes(ships)
    ratios, without_cli = gather_ratios(ships), gather_ratios(ships, without_cli=True)
    lines += [
        "",
        f"{most} repos / {fewest}, without the stand-in CLI's run (the floor): **{without_cli[KEPT_BUNDLE]:.2f}** "
        f"with the {KEPT_BUNDLE}, {without_cli[ARCHIVES]:.2f} from {ARCHIVES} in a new environment, "
        f"{without_cli[OBJECT_BY_OBJECT]:.2f} {OBJECT_BY_OBJECT}; the whole Deploy state, {ratios[KEPT_BUNDLE]:.2f}, "
        f"{ratios[ARCHIVES]:.2f} and {ratios[OBJECT_BY_OBJECT]:.2f}.",
        "",
        f"### Bursts: N pushes to one deployment at the same moment (stand-in CLI of {ships.plan.cli_seconds:g} s, "
        "ships coalesced: one carries every change deferred before it)",
        "",
        _row("N", "wall (s)", "CLI runs", "not succeeded", "wall / one ship", "target: CLI runs / wall (s)"),
        _row("---:", "---:", "---:", "---", "---:", "---"),
    ]
    for burst in ships.bursts:
        wall_target = burst_wall_target(ships, burst)
        target = f"<= {BURST_CLI_RUNS_TARGET} / " + (f"<= {wall_target:.1f}" if wall_target is not None else "-")
        failed = ", ".join(f"{count} {error}" for error, count in sorted(burst.failed.items())) or "0"
        lines.append(_row(burst.pushes, f"{burst.wall_seconds:.1f}", burst.cli_runs, failed,
                          f"{burst.wall_seconds / one_ship_seconds(ships):.2f}", target))
    return lines


def write_results(document: Path, table: str) -> None:
    """Put the table between the results markers of the document, keeping the rest; create it if need be."""
    block = f"{RESULTS_BEGIN}\n{table}\n{RESULTS_END}"
    if document.exists():
        text = document.read_text()
        start, end = text.find(RESULTS_BEGIN), text.find(RESULTS_END)
        if start != -1 and end > start:
            document.write_text(text[:start] + block + text[end + len(RESULTS_END):])
            return
        document.write_text(text.rstrip("\n") + "\n\n## Results\n\n" + block + "\n")
        return
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(f"# Benchmarks\n\n## Results\n\n{block}\n")
