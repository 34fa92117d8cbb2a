"""Where the benchmark's table goes in docs/benchmarks.md."""

from local_mode.bench.report import RESULTS_BEGIN, RESULTS_END, ship_checks, ship_sections, write_results
from local_mode.bench.ships import ARCHIVES, FULL, KEPT_BUNDLE, OBJECT_BY_OBJECT, BurstRun, GatherRun, ShipResults


def test_only_the_marked_block_is_replaced(tmp_path):
    document = tmp_path / "benchmarks.md"
    document.write_text(f"# Benchmarks\n\nHow to read it.\n\n{RESULTS_BEGIN}\nold table\n{RESULTS_END}\n\n## Notes\n")
    write_results(document, "new table")
    assert document.read_text() == (
        f"# Benchmarks\n\nHow to read it.\n\n{RESULTS_BEGIN}\nnew table\n{RESULTS_END}\n\n## Notes\n"
    )


def test_a_missing_document_is_created_and_one_without_markers_gets_a_results_section(tmp_path):
    created = tmp_path / "docs" / "benchmarks.md"
    write_results(created, "table")
    assert created.read_text() == f"# Benchmarks\n\n## Results\n\n{RESULTS_BEGIN}\ntable\n{RESULTS_END}\n"
    notes_only = tmp_path / "notes.md"
    notes_only.write_text("# Benchmarks\n\nNotes.\n")
    write_results(notes_only, "table")
    assert notes_only.read_text() == f"# Benchmarks\n\nNotes.\n\n## Results\n\n{RESULTS_BEGIN}\ntable\n{RESULTS_END}\n"


GATHERED = {(1, KEPT_BUNDLE): 0.8, (1, ARCHIVES): 1.0, (1, OBJECT_BY_OBJECT): 1.9, (10, KEPT_BUNDLE): 1.4,
            (10, ARCHIVES): 1.5, (10, OBJECT_BY_OBJECT): 15.1}


def ships(gather_seconds: dict[tuple[int, str], float], bursts: list[tuple[int, float, int]],
          failed: dict[int, dict[str, int]] | None = None, cli_seconds: float = 0.5) -> ShipResults:
    gathering = [GatherRun(repos=repos, files_per_repo=200, mode=mode, deploy_seconds=[seconds], deploy_gets=repos,
                           cli_seconds=[cli_seconds])
                 for (repos, mode), seconds in gather_seconds.items()]
    return ShipResults(plan=FULL, gathering=gathering, bursts=[
        BurstRun(pushes=pushes, cli_seconds=5.0, wall_seconds=wall, cli_runs=runs, failed=(failed or {}).get(pushes, {}))
        for pushes, wall, runs in bursts])


def test_ship_targets_are_printed_as_target_and_measured():
    measured = ships(GATHERED, [(1, 8.0, 1), (5, 60.0, 5), (20, 30.0, 3)])

    checks = {check.target: (check.measured, check.met) for check in ship_checks(measured)}

    # Less the CLI's run (0.5 s in each): (1.4 - 0.5) / (0.8 - 0.5).
    assert checks["Gathering (kept bundle; Deploy state less the CLI's run, the floor): 10 x 200 files / 1 x 200 "
                  "<= 2"] == ("3.00", False)
    assert checks["Burst of 5, CLI of 5 s: CLI runs <= 3"] == ("5", False)
    assert checks["Burst of 5: wall <= 3 ships + 15 s = 39.0 s"] == ("60.0 s", False)
    assert checks["Burst of 20: wall <= 4 ships + 20 s = 52.0 s"] == ("30.0 s", True)
    # Not measured: not met.
    assert checks["Burst of 50 with default settings: no LockWaitExpired"] == ("not measured", False)
    table = "\n".join(ship_sections(measured))
    # Without the CLI's run (0.5 s in each): 0.9 / 0.3, 1.0 / 0.5 and 14.6 / 1.4.
    assert ("10 repos / 1, without the stand-in CLI's run (the floor): **3.00** with the kept bundle, 2.00 from "
            "archives in a new environment, 10.43 object by object; the whole Deploy state, 1.75, 1.50 and 7.95.") in table
    assert "| 10 x 200 | archives | 1.50 | 1.00 | 10 |" in table
    assert table.index("| 1 x 200 | kept bundle |") < table.index("| 1 x 200 | archives |") < table.index(
        "| 1 x 200 | object by object |") < table.index("| 10 x 200 | kept bundle |")
    assert "| 5 | 60.0 | 5 | 0 | 7.50 | <= 3 / <= 39.0 |" in table


def test_the_burst_of_50_meets_its_target_only_without_a_lock_wait_expired():
    bursts = [(1, 8.0, 1), (50, 400.0, 50)]

    def check(failed: dict[int, dict[str, int]]) -> tuple[str, bool]:
        checks = {check.target: (check.measured, check.met) for check in ship_checks(ships(GATHERED, bursts, failed))}
        return checks["Burst of 50 with default settings: no LockWaitExpired"]

    assert check({}) == ("0 LockWaitExpired", True)
    assert check({50: {"AstroDeployFailed": 1}}) == ("0 LockWaitExpired", True)
    assert check({50: {"LockWaitExpired": 3}}) == ("3 LockWaitExpired", False)
