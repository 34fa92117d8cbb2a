"""Which files Airflow parses as DAG files: `.airflowignore` as Airflow applies it, and safe mode's test.

The same rules run against Airflow's own listing in tests/oracle; these pin the details one by one.
"""

import pytest

from functions.shared.dag_discovery import IgnoreRules, describe_rule, might_contain_dag


def ignored(ignore_files: dict[str, str], path: str) -> bool:
    return IgnoreRules(ignore_files).ignored_by(path) is not None


@pytest.mark.parametrize(
    "text, path, expected",
    [
        ("include/", "include/helpers.py", True),  # a folder pattern prunes the folder
        ("include/", "include", False),  # ... and matches no file
        ("include", "sub/include/x.py", True),  # no `/` in the middle: a name at any depth
        ("/include", "sub/include/x.py", False),  # a leading `/`: from the ignore file's folder only
        ("/include", "include/x.py", True),
        ("*.sql", "sql/deep/report.sql", True),
        ("old_*.py", "old_etl.py", True),
        ("old_*.py", "etl_old_.py", False),
        ("sql/*.py", "sql/a.py", True),
        ("sql/*.py", "sql/deep/a.py", False),  # `*` stays inside one folder
        ("sql/**/a.py", "sql/deep/er/a.py", True),
        ("**/tmp", "a/b/tmp/x.py", True),
        ("a/**", "a/b.py", True),
        ("*.py\n!keep.py", "keep.py", False),  # a later negation wins
        ("!keep.py\n*.py", "keep.py", True),  # ... but not an earlier one
        ("drafts/\n!drafts/keep.py", "drafts/keep.py", True),  # an ignored folder is never entered
        ("etl.py  # the old one", "etl.py", True),  # comments end a line
        ("# etl.py", "etl.py", False),
        ("/", "etl.py", False),
        ("E*.py", "etl.py", False),  # case matters
    ],
)
def test_ignore_patterns_match_as_airflow_matches_them(text, path, expected):
    assert ignored({".airflowignore": text}, path) is expected


def test_nested_ignore_files_apply_to_their_folder_and_below():
    files = {".airflowignore": "*.tmp.py\n", "pipelines/.airflowignore": "/legacy.py\n*.draft.py\n"}
    assert ignored(files, "pipelines/legacy.py")
    assert not ignored(files, "legacy.py") and not ignored(files, "other/legacy.py")
    assert ignored(files, "pipelines/deep/x.draft.py") and not ignored(files, "x.draft.py")
    assert ignored(files, "pipelines/x.tmp.py")
    rule = IgnoreRules(files).ignored_by("pipelines/legacy.py")
    assert describe_rule(rule) == "pipelines/.airflowignore ('/legacy.py')"


@pytest.mark.parametrize(
    "source, parsed",
    [
        (b"from airflow import DAG\n", True),
        (b"import AIRFLOW  # an Asset\n", True),
        (b'"""Helpers of our Airflow DAGs."""\n', True),
        (b"from airflow.hooks.base import BaseHook\n", False),
        (b"def dag():\n    pass\n", False),
        (b"", False),
    ],
)
def test_safe_mode_parses_only_files_that_mention_airflow_and_dag_or_asset(source, parsed):
    assert might_contain_dag(source) is parsed
