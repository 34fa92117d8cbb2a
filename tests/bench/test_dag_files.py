"""The benchmark's DAG files: realistic sizes, valid Python defining their DAG, the same on every run."""

from local_mode.bench.dag_files import MAX_BYTES, MIN_BYTES, dag_file, dag_files, write_dag_files
from functions.shared.dag_source import inspect_dag_source


def test_every_file_is_between_2_and_20_kb_and_defines_its_dag():
    for file in dag_files(200):
        assert MIN_BYTES <= len(file.body) <= MAX_BYTES, (file.path, len(file.body))
        assert inspect_dag_source(file.body, file.path).dag_ids == [file.dag_id]


def test_files_are_the_same_whatever_the_count():
    assert dag_file(7) == dag_file(7)
    assert dag_files(100)[:10] == dag_files(10)
    assert len({file.path for file in dag_files(1000)}) == 1000


def test_files_are_written_under_their_repo_paths(tmp_path):
    files = dag_files(3)
    write_dag_files(tmp_path, files)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.py")) == sorted(
        file.path for file in files
    )
    assert (tmp_path / files[0].path).read_bytes() == files[0].body
