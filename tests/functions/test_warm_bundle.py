"""The bundle kept in the deploy function's storage between ships: a file stays only while the listing names the
bytes it holds and nobody touched it; everything else is gathered again, and the folder holds exactly the listing."""

import os
from pathlib import Path

import pytest
from bundle_kit import REPOS, archive_keys, archive_members, bundle_of, folder_files, seed
from testkit import DAG_BUCKET

from functions.deploy.bundling import Bundle, gather_bundle
from functions.deploy.warm_bundle import KEPT_FOLDER, RECORD_FILE, claim_kept_bundle, keep_bundle

MAIN_PREFIX = "dags/ws/dep/"


class Ships:
    """Ships as the deploy function makes them, each in its own work folder, all with one storage."""

    def __init__(self, root: Path):
        self.storage = root / "storage"
        self.storage.mkdir(parents=True)
        self.root = root
        self.count = 0

    def ship(self, repo: str | None = None) -> tuple[Bundle, dict[str, bytes]]:
        self.count += 1
        folder = self.root / f"work-{self.count}" / "dags"
        folder.parent.mkdir()
        prefix = f"{MAIN_PREFIX}{repo}/" if repo else MAIN_PREFIX
        kept = claim_kept_bundle(self.storage, folder, DAG_BUCKET, prefix)
        bundle = gather_bundle(DAG_BUCKET, "ws", "dep", folder, repo, kept)
        files = folder_files(folder)
        assert keep_bundle(self.storage, folder, DAG_BUCKET, prefix, bundle.written)
        return bundle, files

    @property
    def kept_files(self) -> dict[str, bytes]:
        return folder_files(self.storage / KEPT_FOLDER / "dags")


@pytest.fixture
def ships(tmp_path) -> Ships:
    return Ships(tmp_path)


def test_an_unchanged_deployment_ships_again_without_reading_s3(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    gets.clear()

    bundle, files = ships.ship()

    assert gets == []
    assert files == bundle_of(REPOS)
    assert (bundle.files, bundle.kept_files, bundle.archived_repos, bundle.archives) == (5, 5, [], [])
    assert bundle.bytes == sum(len(body) for body in bundle_of(REPOS).values())


def test_a_push_reads_only_the_files_it_changed_and_archives_their_repo_whole(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    changed = buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/report.py", Body=b"# b2\n")["ETag"]
    gets.clear()

    bundle, files = ships.ship()

    # The repo's archive is tried (a new environment would need it), then the one changed object is read.
    assert sorted(gets) == archive_keys("repo-b") + ["dags/ws/dep/repo-b/report.py"]
    assert files == bundle_of(REPOS) | {"repo-b/report.py": b"# b2\n"}
    assert bundle.kept_files == 4
    assert [archive.key for archive in bundle.archives] == ["archives/ws/dep/repo-b.zip"]
    helper_etag = buckets.head_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/pkg/helper.py")["ETag"]
    assert archive_members(buckets, "repo-b") == {"pkg/helper.py": (b"VALUE = 1\n", helper_etag),
                                                  "report.py": (b"# b2\n", changed)}


def test_a_repo_changed_as_a_whole_comes_from_its_archive_when_it_matches(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py", Body=b"# c2\n")
    # Another environment ships meanwhile and leaves repo-c's archive up to date.
    Ships(ships.root / "elsewhere").ship()
    gets.clear()

    bundle, files = ships.ship()

    assert gets == archive_keys("repo-c")
    assert files["repo-c/c.py"] == b"# c2\n"
    assert (bundle.kept_files, bundle.archived_repos) == (4, ["repo-c"])


def test_files_gone_from_the_listing_leave_the_folder_and_their_empty_folders(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    buckets.delete_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-b/pkg/helper.py")
    buckets.delete_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py")
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/new/added.py", Body=b"# added\n")
    gets.clear()

    bundle, files = ships.ship()

    expected = bundle_of(REPOS) | {"repo-a/new/added.py": b"# added\n"}
    for gone in ("repo-b/pkg/helper.py", "repo-c/c.py"):
        del expected[gone]
    assert files == expected
    folder = ships.root / "work-2" / "dags"
    assert not (folder / "repo-b" / "pkg").exists() and not (folder / "repo-c").exists()
    assert bundle.repos == ["repo-a", "repo-b"] and bundle.kept_files == 3


def test_a_kept_file_changed_on_disk_is_gathered_again(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    tampered = ships.storage / KEPT_FOLDER / "dags" / "repo-a" / "etl.py"
    tampered.write_bytes(b"import os; os.system('oops')\n")
    gets.clear()

    bundle, files = ships.ship()

    assert files == bundle_of(REPOS)
    assert "archives/ws/dep/repo-a.zip" in gets and bundle.kept_files == 4


def test_an_object_rewritten_with_bytes_of_the_same_size_is_caught_by_its_etag(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    # Same size, same time, other bytes in S3: the ETag tells.
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py", Body=b"from airflow import DAG  # C\n")
    gets.clear()

    _, files = ships.ship()

    assert files["repo-c/c.py"] == b"from airflow import DAG  # C\n"


def test_the_bundle_of_another_prefix_is_removed_not_used(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    gets.clear()

    bundle, files = ships.ship(repo="repo-b")

    assert gets == archive_keys("repo-b")
    assert files == REPOS["repo-b"] and bundle.kept_files == 0
    assert ships.kept_files == REPOS["repo-b"]
    assert sorted(path.name for path in ships.root.iterdir()) == ["storage", "work-1", "work-2"]
    assert not (ships.root / "work-2" / "dags.kept").exists()


def test_a_kept_bundle_is_claimed_by_one_invocation_only(buckets, ships, tmp_path):
    seed(buckets)
    ships.ship()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    first = claim_kept_bundle(ships.storage, tmp_path / "a" / "dags", DAG_BUCKET, MAIN_PREFIX)
    second = claim_kept_bundle(ships.storage, tmp_path / "b" / "dags", DAG_BUCKET, MAIN_PREFIX)

    assert len(first) == 5 and second == {}
    assert folder_files(tmp_path / "a" / "dags") == bundle_of(REPOS)
    assert not (tmp_path / "b" / "dags").exists()


def test_an_unreadable_record_means_gathering_from_s3(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    (ships.storage / KEPT_FOLDER / RECORD_FILE).write_text("{not json")
    gets.clear()

    bundle, files = ships.ship()

    assert sorted(gets) == archive_keys(*REPOS)
    assert files == bundle_of(REPOS) and bundle.kept_files == 0


def test_a_bundle_is_not_kept_over_one_kept_meanwhile(buckets, ships, tmp_path):
    seed(buckets)
    ships.ship()
    folder = tmp_path / "late" / "dags"
    folder.parent.mkdir()
    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", folder, repo="repo-c")

    assert not keep_bundle(ships.storage, folder, DAG_BUCKET, f"{MAIN_PREFIX}repo-c/", bundle.written)
    assert ships.kept_files == bundle_of(REPOS)


def test_a_folder_left_where_a_file_now_goes_is_cleared(buckets, ships):
    seed(buckets, {"repo-a": {"x/y.py": b"# y\n"}})
    ships.ship()
    buckets.delete_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/x/y.py")
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/x", Body=b"# x is a file now\n")

    _, files = ships.ship()

    assert files == {"repo-a/x": b"# x is a file now\n"}
    assert os.path.isfile(ships.storage / KEPT_FOLDER / "dags" / "repo-a" / "x")
