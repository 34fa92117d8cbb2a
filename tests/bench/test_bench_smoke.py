"""The benchmark's whole code path at N=10, once, so that it cannot rot: structure only, no timing asserts."""

import io
import json
from contextlib import redirect_stdout

import pytest

from local_mode.bench import __main__ as bench_cli
from local_mode.bench.cold_start import zip_function_folders
from local_mode.bench.s3_steps import CLEAR_PREFIX, UPLOAD
from local_mode.bench.ships import GATHER_MODES, KEPT_BUNDLE, OBJECT_BY_OBJECT
from local_mode.bench.suite import BenchResults, run_benchmark

SIZE = 10


@pytest.fixture(scope="module")
def bench_run() -> tuple[int, str, BenchResults]:
    """`python -m local_mode.bench --sizes 10 --runs 1 --quick --no-write`, keeping the results it printed."""
    recorded: list[BenchResults] = []

    def recording_run(*args) -> BenchResults:
        recorded.append(run_benchmark(*args))
        return recorded[-1]

    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout):
        patch.setattr(bench_cli, "run_benchmark", recording_run)
        code = bench_cli.main(["--sizes", str(SIZE), "--runs", "1", "--quick", "--no-write"])
    return code, stdout.getvalue(), recorded[0]


def _comparison(results: BenchResults, step: str):
    return next(item for item in results.s3_steps if item.step == step and item.size == SIZE)


def test_the_last_line_is_the_json_summary(bench_run):
    code, output, _ = bench_run
    assert code == 0
    summary = json.loads(output.strip().splitlines()[-1])
    assert set(summary) == {
        f"upload_vs_awscli_n{SIZE}", f"clear_vs_awscli_n{SIZE}", f"s3_requests_over_minimum_n{SIZE}",
        "transitions", "import_ms", "import_vs_boto3", "gather_ratio", "gather_ratio_without_cli", "bursts",
    }
    assert summary[f"upload_vs_awscli_n{SIZE}"] > 0 and summary[f"clear_vs_awscli_n{SIZE}"] > 0
    assert set(summary[f"s3_requests_over_minimum_n{SIZE}"]) == {"upload", "clear_prefix"}
    assert list(summary["transitions"]) == [str(SIZE)] and summary["transitions"][str(SIZE)] > 0
    assert set(summary["import_ms"]) == set(zip_function_folders())
    assert {"parse", "clear_prefix", "upload", "notify"} <= set(summary["import_ms"])
    assert all(milliseconds > 0 for milliseconds in summary["import_ms"].values())
    assert set(summary["import_vs_boto3"]) == set(summary["import_ms"])
    assert all(ratio > 0 for ratio in summary["import_vs_boto3"].values())
    assert set(summary["gather_ratio"]) == set(summary["gather_ratio_without_cli"]) == {
        "kept bundle", "archives", "object by object"}
    assert summary["bursts"].keys() == {"1", "2"}
    assert all(burst["failed"] == 0 and burst["wall_seconds"] > 0 for burst in summary["bursts"].values())


def test_the_table_comes_first_with_every_section(bench_run):
    _, output, _ = bench_run
    table = output.strip().splitlines()[:-1]
    for heading in ("### S3 steps against the AWS CLI", "### Whole executions in the local mode",
                    "### Cold-start proxy per zip function", "### Gathering a bundle in the local mode",
                    "### Bursts: N pushes to one deployment", "### Targets"):
        assert any(line.startswith(heading) for line in table), heading
    assert any(line.startswith(f"| {SIZE} | Upload vs `aws s3 cp --recursive`") for line in table)
    assert any(line.startswith(f"| {SIZE} | ClearPrefix vs `aws s3 rm --recursive`") for line in table)


def test_the_server_counts_exactly_the_requests_our_steps_make(bench_run):
    _, _, results = bench_run
    upload, clear = _comparison(results, UPLOAD), _comparison(results, CLEAR_PREFIX)
    # One copy per file, and the plan Upload reads (Parse stored it; the state carries only a pointer). The repo's
    # archive is Deploy's to write, from the bytes it downloads anyway.
    assert upload.ours[0].requests == {"CopyObject": SIZE, "GetObject": 1}
    assert upload.minimum_requests == SIZE
    # The repo's archive goes in the one delete batch.
    assert clear.ours[0].requests == {"ListObjectsV2": 1, "DeleteObjects": 1}
    assert clear.ours[0].request_count == clear.minimum_requests == 2


def test_the_aws_cli_is_counted_on_the_same_server(bench_run):
    _, _, results = bench_run
    upload, clear = _comparison(results, UPLOAD), _comparison(results, CLEAR_PREFIX)
    assert upload.peer[0].requests.get("CopyObject") == SIZE
    # `aws s3 rm --recursive` deletes key by key.
    assert clear.peer[0].requests.get("DeleteObject") == SIZE


def test_executions_succeed_with_a_state_transition_count(bench_run):
    _, _, results = bench_run
    (run,) = results.executions[SIZE]
    assert run.transitions >= len(run.state_seconds) > 0
    assert run.seconds > 0


def test_gathering_reads_the_pushed_repo_once_and_the_others_from_the_kept_bundle_or_their_archives(bench_run):
    _, _, results = bench_run
    gathering = {(run.repos, run.mode): run for run in results.ships.gathering}
    assert gathering.keys() == {(repos, mode) for repos in (1, 3) for mode in GATHER_MODES}
    for (repos, mode), run in gathering.items():
        # Deploy tries the archive of each repo not left in place (one GET each); the pushed repo's is stale (or,
        # object by object, missing), so its files are read one by one; object by object, every repo's are. With
        # the kept bundle, only the pushed repo is not in place.
        archives_tried = 1 if mode == KEPT_BUNDLE else repos
        read_one_by_one = repos if mode == OBJECT_BY_OBJECT else 1
        assert run.deploy_gets == archives_tried + read_one_by_one * run.files_per_repo
        assert len(run.deploy_seconds) == 1 and run.median_seconds > 0
        # The stand-in CLI ran once within the Deploy state, for part of it.
        assert len(run.cli_seconds) == 1 and 0 < run.cli_seconds[0] < run.deploy_seconds[0]


def test_bursts_count_cli_runs_per_deployment(bench_run):
    _, output, results = bench_run
    # Coalesced: one ship, or two when the second push took the lock after the first decided to ship.
    assert [(burst.pushes, burst.failed) for burst in results.ships.bursts] == [(1, {}), (2, {})]
    assert [burst.cli_runs for burst in results.ships.bursts][0] == 1
    assert [burst.cli_runs for burst in results.ships.bursts][1] in (1, 2)
    assert any(line.startswith("| 2 | ") for line in output.splitlines())
