"""Where the benchmark's table goes in docs/benchmarks.md."""

from local_mode.bench.report import RESULTS_BEGIN, RESULTS_END, write_results


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
