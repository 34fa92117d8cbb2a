"""Real Airflow as the oracle: Parse refuses a bundle exactly when Airflow 3.3.2 would fail to load it.

Every case of the corpus (tests/oracle/corpus.py) is loaded by Airflow's own code in its tool environment
(`make test` installs it: Makefile, $(AIRFLOW_TOOL)), every bundle of every case in one run, and sent to Parse as a
push of its repo, the other repos live in the DAG bucket. Airflow "fails" a case when it shows an import error
or when one dag_id is defined by two files of the deployment (Airflow keeps one silently).
"""

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from oracle.corpus import CASES, LIVE_COMMIT, MAIN, Case

from functions.parse.planning import build_plan
from functions.shared.errors import InvalidRequest
from testkit import DAG_BUCKET, SOURCE_BUCKET

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_VERSION = "3.3.2"
AIRFLOW_PYTHON = PROJECT_ROOT / ".tools" / f"airflow-{AIRFLOW_VERSION}" / "bin" / "python"
LOADER = Path(__file__).with_name("airflow_loader.py")
WORKSPACE = "oracle"


def bundle_roots(case: Case, index: int, root: Path) -> dict[str, Path]:
    """Write the case's bundles: main mode, one with a folder per repo; per-repo mode, one per repo."""
    roots = {}
    for repo, files in case.repos.items():
        bundle = root / f"case-{index}" / ("main" if case.mode == MAIN else repo)
        folder = bundle / repo if case.mode == MAIN else bundle
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text)
        roots[bundle.name] = bundle
    return {f"{index}/{name}": bundle for name, bundle in roots.items()}


def load_with_airflow(tmp_path: Path) -> dict:
    bundles = {}
    for index, case in enumerate(CASES):
        bundles.update({name: str(root) for name, root in bundle_roots(case, index, tmp_path / "bundles").items()})
    home = tmp_path / "airflow-home"
    home.mkdir()
    environment = {
        "PATH": os.environ["PATH"], "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    output = tmp_path / "airflow.json"
    completed = subprocess.run(
        [AIRFLOW_PYTHON, "-I", LOADER, output], input=json.dumps({"bundles": bundles}), text=True,
        capture_output=True, env=environment, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(output.read_text())


def airflow_failures(index: int, loaded: dict) -> list[str]:
    """Import errors of the case's bundles, and dag_ids two of its files define."""
    failures, defined = [], Counter()
    for name, files in loaded["bundles"].items():
        if name.split("/")[0] != str(index):
            continue
        for path, parsed in files.items():
            failures += [f"{path}: {error.strip().splitlines()[-1]}" for error in parsed["import_errors"]]
            defined.update(parsed["dag_ids"])
    return failures + [f"dag_id {dag_id!r} in {count} files" for dag_id, count in defined.items() if count > 1]


def parse_refusal(s3, case: Case, index: int, installed: list[str]) -> str | None:
    """Parse's refusal of a push of the case's repo, the other repos live; None when it accepts it."""
    deployment = f"case-{index}"
    for repo, files in case.repos.items():
        for path, text in files.items():
            if repo == case.pushed:
                s3.put_object(Bucket=SOURCE_BUCKET, Key=f"build/{deployment}/{path}", Body=text.encode())
            else:
                s3.put_object(Bucket=DAG_BUCKET, Key=f"dags/{WORKSPACE}/{deployment}/{repo}/{path}",
                              Body=text.encode(), Metadata={"commit": LIVE_COMMIT})
    target = {"deploymentId": "oracle", "dagBundles": case.mode}
    if case.lists_installed:
        target["installedPackages"] = installed
    request = {"astroWorkspace": WORKSPACE, "astroDeployment": deployment, "repo": case.pushed, "commit": "abcd1234",
               "body": {"source_prefix": f"s3://{SOURCE_BUCKET}/build/{deployment}/"}}
    try:
        build_plan(request, f"oracle-{index}", frozenset({SOURCE_BUCKET}),
                   {f"{WORKSPACE}/{deployment}": target}, DAG_BUCKET)
    except InvalidRequest as refused:
        return str(refused)
    return None


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    if not AIRFLOW_PYTHON.exists():
        pytest.fail(f"Airflow's tool environment is missing ({AIRFLOW_PYTHON.relative_to(PROJECT_ROOT)}): run "
                    f"`make test`, which installs it")
    return AIRFLOW_PYTHON


def test_parse_refuses_exactly_the_bundles_airflow_fails_to_load(airflow_python, buckets, tmp_path):
    loaded = load_with_airflow(tmp_path)
    assert loaded["version"] == AIRFLOW_VERSION, "remove .tools/airflow-3.3.2 and run `make test`"
    installed = [name for name in loaded["installed"] if name.isidentifier()]
    disagreements = []
    for index, case in enumerate(CASES):
        failures = airflow_failures(index, loaded)
        refusal = parse_refusal(buckets, case, index, installed)
        if bool(failures) != (case.refusal is not None):
            disagreements.append(f"{case.name}: the corpus expects Airflow to {'fail' if case.refusal else 'load it'}"
                                 f", Airflow: {failures or 'loaded it'}")
        if bool(refusal) != bool(failures):
            disagreements.append(f"{case.name}: Airflow: {failures or 'loaded it'}; Parse: {refusal or 'accepted it'}")
        elif refusal and case.refusal not in refusal:
            disagreements.append(f"{case.name}: Parse's refusal does not say {case.refusal!r}: {refusal}")
    assert not disagreements, "\n".join(disagreements)
    # Both modes, clean bundles and refusals: the corpus covers what it claims to.
    assert {case.mode for case in CASES if case.refusal} == {case.mode for case in CASES if not case.refusal} == {
        MAIN, "per-repo"}
