"""The bundles kept in the deploy function's storage between ships, one per prefix within a budget of bytes: a file
stays only while the listing names the bytes it holds and nobody touched it; everything else is gathered again, and
the folder holds exactly the listing."""

import os
from pathlib import Path

import pytest
from bundle_kit import REPOS, archive_keys, archive_members, bundle_of, folder_files, seed
from testkit import DAG_BUCKET

from functions.deploy.bundling import Bundle, gather_bundle
from functions.deploy.warm_bundle import KEPT_FOLDER, RECORD_FILE, USAGE_FILE, claim_kept_bundle, keep_bundle, kept_path

MAIN_PREFIX = "dags/ws/dep/"
BUDGET = 1024**3


class Ships:
    """Ships as the deploy function makes them, each in its own work folder, all with one storage."""

    def __init__(self, root: Path, budget: int = BUDGET):
        self.budget = budget
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
        keep_bundle(self.storage, folder, DAG_BUCKET, prefix, bundle.written, self.budget)
        return bundle, files

    def kept(self, prefix: str = MAIN_PREFIX) -> Path:
        return kept_path(self.storage, DAG_BUCKET, prefix)

    def kept_files(self, prefix: str = MAIN_PREFIX) -> dict[str, bytes]:
        return folder_files(self.kept(prefix) / "dags")


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
    assert (bundle.files, bundle.files_kept, bundle.archived_repos, bundle.archives) == (5, 5, [], [])
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
    assert bundle.files_kept == 4
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
    assert (bundle.files_kept, bundle.archived_repos) == (4, ["repo-c"])


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
    assert bundle.repos == ["repo-a", "repo-b"] and bundle.files_kept == 3


def test_a_kept_file_changed_on_disk_is_gathered_again(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    tampered = ships.kept() / "dags" / "repo-a" / "etl.py"
    tampered.write_bytes(b"import os; os.system('oops')\n")
    gets.clear()

    bundle, files = ships.ship()

    assert files == bundle_of(REPOS)
    assert "archives/ws/dep/repo-a.zip" in gets and bundle.files_kept == 4


def test_an_object_rewritten_with_bytes_of_the_same_size_is_caught_by_its_etag(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    # Same size, same time, other bytes in S3: the ETag tells.
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py", Body=b"from airflow import DAG  # C\n")
    gets.clear()

    _, files = ships.ship()

    assert files["repo-c/c.py"] == b"from airflow import DAG  # C\n"


def test_each_prefix_has_its_own_kept_bundle(buckets, gets, ships):
    seed(buckets)
    ships.ship()
    gets.clear()

    bundle, files = ships.ship(repo="repo-b")

    # The main bundle's files are not the per-repo bundle's (they lie under <repo>/): nothing is taken from it.
    assert gets == archive_keys("repo-b")
    assert files == REPOS["repo-b"] and bundle.files_kept == 0
    assert ships.kept_files(f"{MAIN_PREFIX}repo-b/") == REPOS["repo-b"]
    assert ships.kept_files() == bundle_of(REPOS)
    gets.clear()

    again, files = ships.ship()

    assert gets == [] and again.files_kept == 5 and files == bundle_of(REPOS)
    assert sorted(path.name for path in ships.root.iterdir()) == ["storage", "work-1", "work-2", "work-3"]
    assert not (ships.root / "work-2" / "dags.kept").exists()


def test_kept_bundles_beyond_the_budget_go_least_recently_kept_first(buckets, gets, tmp_path):
    seed(buckets)
    sizes = {repo: sum(len(body) for body in files.values()) for repo, files in REPOS.items()}
    ships = Ships(tmp_path, budget=sizes["repo-a"] + sizes["repo-b"])
    for repo in ("repo-a", "repo-b"):
        ships.ship(repo=repo)
    ships.ship(repo="repo-a")  # kept again: now the most recent

    ships.ship(repo="repo-c")

    kept = sorted(path.name for path in (ships.storage / KEPT_FOLDER).iterdir())
    assert kept == sorted(ships.kept(f"{MAIN_PREFIX}{repo}/").name for repo in ("repo-a", "repo-c"))
    gets.clear()
    bundle, _ = ships.ship(repo="repo-b")
    assert bundle.files_kept == 0 and gets == archive_keys("repo-b")


def test_a_bundle_larger_than_the_budget_is_not_kept(buckets, tmp_path):
    seed(buckets)
    ships = Ships(tmp_path, budget=sum(len(body) for body in REPOS["repo-a"].values()) - 1)

    ships.ship(repo="repo-a")

    assert not (ships.storage / KEPT_FOLDER).exists() or list((ships.storage / KEPT_FOLDER).iterdir()) == []
    assert list((tmp_path / "work-1").iterdir()) == [tmp_path / "work-1" / "dags"]


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
    (ships.kept() / RECORD_FILE).write_text("{not json")
    gets.clear()

    bundle, files = ships.ship()

    assert sorted(gets) == archive_keys(*REPOS)
    assert files == bundle_of(REPOS) and bundle.files_kept == 0


def test_a_bundle_is_not_kept_over_one_kept_meanwhile(buckets, ships, tmp_path):
    seed(buckets)
    ships.ship()
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-c/c.py", Body=b"# c2\n")
    folder = tmp_path / "late" / "dags"
    folder.parent.mkdir()
    bundle = gather_bundle(DAG_BUCKET, "ws", "dep", folder)

    assert not keep_bundle(ships.storage, folder, DAG_BUCKET, MAIN_PREFIX, bundle.written, BUDGET)
    assert ships.kept_files() == bundle_of(REPOS)


def test_a_folder_left_where_a_file_now_goes_is_cleared(buckets, ships):
    seed(buckets, {"repo-a": {"x/y.py": b"# y\n"}})
    ships.ship()
    buckets.delete_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/x/y.py")
    buckets.put_object(Bucket=DAG_BUCKET, Key="dags/ws/dep/repo-a/x", Body=b"# x is a file now\n")

    _, files = ships.ship()

    assert files == {"repo-a/x": b"# x is a file now\n"}
    assert os.path.isfile(ships.kept() / "dags" / "repo-a" / "x")


def test_an_empty_bundle_is_not_kept_and_a_damaged_one_goes_at_the_next_keep(buckets, ships, tmp_path):
    seed(buckets)
    empty = tmp_path / "empty" / "dags"
    empty.mkdir(parents=True)
    assert not keep_bundle(ships.storage, empty, DAG_BUCKET, "dags/ws/other/", {}, BUDGET)
    ships.ship(repo="repo-a")
    (ships.kept(f"{MAIN_PREFIX}repo-a/") / USAGE_FILE).write_text("{damaged")

    ships.ship(repo="repo-b")

    assert sorted(path.name for path in (ships.storage / KEPT_FOLDER).iterdir()) == [
        ships.kept(f"{MAIN_PREFIX}repo-b/").name]
