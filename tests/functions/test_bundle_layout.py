"""Imports checked as Airflow's dag processor runs them, in each layout (real Airflow agrees: tests/oracle)."""

from functions.shared.bundle_layout import BundleLayout, PythonFile, import_problems
from functions.shared.dag_discovery import might_contain_dag
from functions.shared.dag_source import inspect_dag_source

DAG_HEADER = "from airflow.sdk import dag\n"


def check(files: dict[str, str], mode="main", repo="marketing", others=None, installed=None):
    layout = BundleLayout(mode=mode, repo=repo, own_paths=frozenset(files), other_repos=others or {},
                          installed=frozenset(installed) if installed is not None else None)
    python = {path: PythonFile(path, inspect_dag_source(text, path), might_contain_dag(text.encode()))
              for path, text in files.items() if path.endswith(".py")}
    return import_problems(layout, python)


def test_main_mode_imports_the_repo_by_its_name():
    result = check({"etl.py": DAG_HEADER + "from marketing.include.helpers import x\n", "include/helpers.py": "x = 1\n"})
    assert result.problems == [] and result.reached == {"etl.py", "include/helpers.py"}


def test_main_mode_refuses_imports_from_the_repo_root_with_the_fix():
    [problem] = check({"etl.py": DAG_HEADER + "from include.helpers import x\n", "include/helpers.py": "x = 1\n"}
                      ).problems
    assert problem.startswith("etl.py line 2: `from include.helpers import x`: 'include.helpers' is this repo's")
    assert problem.endswith("write `from marketing.include.helpers import x`")


def test_per_repo_mode_is_the_reverse():
    files = {"etl.py": DAG_HEADER + "from include.helpers import x\n", "include/helpers.py": "x = 1\n"}
    assert check(files, mode="per-repo").problems == []
    files["etl.py"] = DAG_HEADER + "import marketing.include.helpers\n"
    [problem] = check(files, mode="per-repo").problems
    assert "'marketing' is no package there" in problem and problem.endswith("write `import include.helpers`")


def test_a_repo_name_that_is_no_identifier_matters_only_when_its_files_import_each_other():
    assert check({"etl.py": DAG_HEADER + "import os\n"}, repo="marketing-etl").problems == []
    [problem] = check({"etl.py": DAG_HEADER + "from include import helpers\n", "include/helpers.py": ""},
                      repo="marketing-etl").problems
    assert "'marketing-etl' is not a Python identifier" in problem and "'marketing_etl'" in problem


def test_helpers_are_followed_and_their_relative_imports_resolved_from_their_package():
    files = {
        "etl.py": DAG_HEADER + "from marketing.include import helpers\n",
        "include/__init__.py": "from . import constants\n",
        "include/constants.py": "from ..include.missing import y\n",
        "include/helpers.py": "from .constants import X\n",
    }
    [problem] = check(files).problems
    assert problem.startswith("include/constants.py line 1: `from ..include.missing import y`: no module "
                              "'marketing.include.missing'")


def test_relative_imports_in_dag_files_are_refused_with_the_absolute_import():
    [problem] = check({"pipelines/etl.py": DAG_HEADER + "from .helpers import x\n", "pipelines/helpers.py": ""}
                      ).problems
    assert "Airflow imports DAG files as standalone modules" in problem
    assert problem.endswith("write `from marketing.pipelines.helpers import x`")


def test_a_relative_import_above_the_top_level_package_is_refused():
    for statement in ("from .. import other", "from ..other import x"):
        files = {"etl.py": DAG_HEADER + "import marketing.helpers\n", "helpers.py": statement, "other.py": ""}
        assert "goes above the top-level package (marketing) fails" in check(files).problems[0]


def test_the_standard_library_and_installed_packages_shadow_bundle_folders():
    files = {"etl.py": DAG_HEADER + "from email.templates import render\nimport email.mime.text\n",
             "templates.py": ""}
    [problem] = check(files, repo="email").problems
    assert "'email' is also the standard library" in problem and "rename repo 'email'" in problem
    files = {"etl.py": DAG_HEADER + "from yaml.loader import x\n", "yaml/loader.py": ""}
    assert check(files, mode="per-repo").problems == []  # not known to be installed: the repo's own yaml
    assert "an installed package (installedPackages)" in check(files, mode="per-repo", installed=["yaml"]).problems[0]


def test_third_party_imports_pass_unless_the_installed_packages_are_listed():
    files = {"etl.py": DAG_HEADER + "import pandas\nimport json\n"}
    assert check(files).problems == []
    assert check(files, installed=["pandas"]).problems == []
    [problem] = check(files, installed=["numpy"]).problems
    assert "'pandas' is neither in the bundle, the standard library nor the deployment's installedPackages" in problem


def test_other_repos_are_importable_in_main_mode_only():
    others = {"finance": ["common/calendar.py"]}
    files = {"etl.py": DAG_HEADER + "from finance.common.calendar import period\n"}
    assert check(files, others=others).problems == []
    assert "has no finance/common/budget.py" in check(
        {"etl.py": DAG_HEADER + "import finance.common.budget\n"}, others=others).problems[0]
    assert "another repo of the deployment" in check(files, mode="per-repo", others=others).problems[0]


def test_only_what_runs_at_parse_time_can_fail():
    files = {
        "etl.py": DAG_HEADER + "try:\n    import not_installed\nexcept ImportError:\n    pass\n"
                  "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import also_not_installed\n"
                  "def task():\n    from include.helpers import x\n",
        "include/helpers.py": "",
        "unused.py": "from include.helpers import x\n",  # imported by nothing, not parsed by Airflow
    }
    result = check(files, installed=[])
    assert result.problems == []
    assert len(result.warnings) == 1 and "(in a function, runs when the task runs)" in result.warnings[0]
    assert "unused.py" not in result.reached


def test_from_a_folder_without_init_only_its_modules_can_be_imported():
    files = {"etl.py": DAG_HEADER + "from marketing.lib import rules, RULES\n", "lib/rules.py": ""}
    assert "cannot import 'RULES'" in check(files).problems[0]
