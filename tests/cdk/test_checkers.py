"""The template's checkers, each at zero: cfn-lint and checkov on the synthesized template (cdk-nag: test_nag.py).

Each allowed exception is listed, with its reason, in the checker's checked-in configuration.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# cfn-lint is pinned in pyproject.toml and installed in the project's environment.
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
CFN_LINT_CONFIG = PROJECT_ROOT / ".cfnlintrc.yaml"
# checkov pins an old boto3 exactly: `make test` installs it in its own environment (Makefile, $(CHECKOV)).
CHECKOV = PROJECT_ROOT / ".tools" / "checkov" / "bin" / "checkov"
CHECKOV_CONFIG = PROJECT_ROOT / ".checkov.yaml"
CHECKER_TIMEOUT_SECONDS = 120


def listed_exceptions(config: Path, key: str) -> dict[str, str]:
    """The check IDs listed under `key`, each with the comment lines just above it (its reason)."""
    exceptions: dict[str, str] = {}
    comment: list[str] = []
    in_list = False
    for line in config.read_text().splitlines():
        stripped = line.strip()
        if not line.startswith(" ") and stripped and not stripped.startswith("#"):
            in_list = stripped == f"{key}:"
        elif in_list and stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif in_list and stripped.startswith("- "):
            exceptions[stripped[2:].strip()] = " ".join(comment)
            comment = []
    return exceptions


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=CHECKER_TIMEOUT_SECONDS,
        check=False,
    )


# The test stack grants source keys; the other one, an existing secret's customer-managed key.
@pytest.fixture(scope="module", params=["synthesized", "with_customer_managed_secret"])
def template_file(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("checkers") / "template.json"
    path.write_text(json.dumps(request.getfixturevalue(request.param).template.to_json(), indent=1))
    return path


def test_cfn_lint_reports_nothing_beyond_the_listed_warnings(template_file):
    result = run([CFN_LINT, "--config-file", CFN_LINT_CONFIG, "--format", "json", template_file])
    findings = json.loads(result.stdout or "[]")
    summary = [f"{finding['Level']} {finding['Rule']['Id']}: {finding['Message']}" for finding in findings]
    assert [line for line in summary if line.startswith("Error")] == []
    assert summary == []
    assert result.returncode == 0, result.stderr


def test_cfn_lint_ignores_only_warnings_and_says_why():
    ignored = listed_exceptions(CFN_LINT_CONFIG, "ignore_checks")
    assert ignored
    for check, reason in ignored.items():
        # Errors are never ignored: W (warning) rules only.
        assert re.fullmatch(r"W\d{4}", check), check
        assert len(reason) > 60, check


@pytest.fixture(scope="module")
def checkov() -> Path:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is missing ({CHECKOV.relative_to(PROJECT_ROOT)}): run `make test`, which installs it")
    pinned = re.search(r"checkov==([\w.]+)", (PROJECT_ROOT / "Makefile").read_text())[1]
    installed = run([CHECKOV, "--version"]).stdout.strip()
    if installed != pinned:
        pytest.fail(
            f"checkov {installed} is installed, the Makefile pins {pinned}: remove .tools/checkov and run `make test`"
        )
    return CHECKOV


def test_checkov_fails_no_check(checkov, template_file):
    result = run(
        [
            checkov,
            "-f",
            template_file,
            "--framework",
            "cloudformation",
            "--config-file",
            CHECKOV_CONFIG,
            "--quiet",
            "--compact",
            "-o",
            "json",
        ]
    )
    report = json.loads(result.stdout)
    failed = [f"{check['check_id']} {check['resource']}" for check in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0
    # It did read the template: every resource passes a check or more.
    assert report["summary"]["resource_count"] == len(json.loads(template_file.read_text())["Resources"])
    assert report["summary"]["passed"] > report["summary"]["resource_count"]
    assert result.returncode == 0, result.stderr


def test_checkov_skips_say_why():
    skipped = listed_exceptions(CHECKOV_CONFIG, "skip-check")
    assert skipped
    for check, reason in skipped.items():
        assert re.fullmatch(r"CKV2?_AWS_\d+", check), check
        assert len(reason) > 60, check
