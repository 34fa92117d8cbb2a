"""Deploy's work folders: removed when their invocation ends, and by the next invocation when Lambda stopped theirs
(a timed-out invocation's process ends with no `finally` run): never while one is in use."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from functions.deploy.work_folders import IN_USE_FILE, WORK_PREFIX, remove_abandoned, work_folder


def abandoned(storage: Path, name: str = "stopped") -> Path:
    """A work folder as a stopped invocation leaves it: its lock file there, held by no process any more."""
    folder = storage / f"{WORK_PREFIX}{name}"
    (folder / "home" / ".astro").mkdir(parents=True)
    (folder / IN_USE_FILE).touch()
    (folder / "home" / ".astro" / "config.yaml").write_text("token: secret\n")
    (folder / "dags" / "repo-a").mkdir(parents=True)
    (folder / "dags" / "repo-a" / "etl.py").write_bytes(b"x" * 1000)
    return folder


def test_a_folder_is_removed_when_its_block_ends_even_by_an_error(tmp_path):
    try:
        with work_folder(tmp_path) as work:
            (work / "file").write_text("x")
            raise RuntimeError("the ship failed")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_folder_nobody_holds_is_removed_with_what_it_holds(tmp_path):
    left = abandoned(tmp_path)

    assert remove_abandoned(tmp_path) == [left]
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_use_is_never_removed(tmp_path):
    left = abandoned(tmp_path)
    with work_folder(tmp_path) as running:
        # Another invocation of the same process (the local mode): its lock is held by its own open file.
        assert remove_abandoned(tmp_path) == [left]
        assert running.is_dir() and (running / IN_USE_FILE).exists()
    assert list(tmp_path.iterdir()) == []


def test_folders_being_made_and_other_folders_are_left_alone(tmp_path):
    being_made = tmp_path / f"{WORK_PREFIX}new"
    being_made.mkdir()
    other = tmp_path / "kept-bundles"
    other.mkdir()
    (other / IN_USE_FILE).touch()

    assert remove_abandoned(tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([being_made.name, other.name])


def test_nothing_to_do_in_a_storage_that_is_not_a_folder(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")

    assert remove_abandoned(not_a_folder) == []
    assert os.path.isfile(not_a_folder)


def test_invocations_running_together_never_remove_each_others_folders(tmp_path):
    def invocation(_: int) -> bool:
        with work_folder(tmp_path) as work:
            # Another invocation's cleanup may run at any moment of this one's, its making included.
            remove_abandoned(tmp_path)
            (work / "file").write_text("x")
            remove_abandoned(tmp_path)
            return (work / "file").exists()

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(invocation, range(400)))
    assert list(tmp_path.iterdir()) == []
