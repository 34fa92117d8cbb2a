"""The deploy image's Dockerfile, checked without Docker: pins, the CLI's checksum verification, what it copies.

The verification step is also run as the shell script it is, against a local stand-in for the release.
"""

import hashlib
import io
import os
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

from cdk.zip_assets import BYTECODE_INVALIDATION

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT  # the image asset is staged from the project root
DOCKERFILE = CONTEXT / "functions" / "deploy" / "Dockerfile"
RELEASE_URL = "https://github.com/astronomer/astro-cli/releases/download/v${ASTRO_CLI_VERSION}"
TARBALL = "astro_${ASTRO_CLI_VERSION}_linux_amd64.tar.gz"
CHECKSUMS = "astro_${ASTRO_CLI_VERSION}_checksums.txt"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped, as Docker reads them."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", "", "\n".join(lines))
    parsed = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            parsed.append((instruction.upper(), arguments.strip()))
    return parsed


def cli_version() -> str:
    defaults = [arguments for instruction, arguments in instructions()
                if instruction == "ARG" and arguments.startswith("ASTRO_CLI_VERSION=")]
    assert len(defaults) == 1, "the astro CLI version has one default, in one ARG"
    return defaults[0].split("=", 1)[1]


def verification_script() -> str:
    runs = [arguments for instruction, arguments in instructions() if instruction == "RUN" and "sha256sum" in arguments]
    assert len(runs) == 1
    return runs[0]


def test_the_cli_version_is_pinned_in_one_place_and_has_named_dag_bundles():
    version = cli_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert tuple(int(part) for part in version.split(".")) >= (1, 46, 0), "--dag-bundle-name is announced in 1.46.0"
    assert DOCKERFILE.read_text().count(version) == 1
    assert instructions()[0] == ("ARG", f"ASTRO_CLI_VERSION={version}"), "declared before the first FROM"


def test_base_images_are_the_lambda_python_runtime_pinned_by_tag():
    images = [arguments.split()[0] for instruction, arguments in instructions() if instruction == "FROM"]
    assert images[-1] == "public.ecr.aws/lambda/python:3.12"
    for image in images:
        assert re.fullmatch(r"[^:@\s]+:[^:\s]+", image) and not image.endswith(":latest"), image


def test_the_release_tarball_is_downloaded_and_verified_before_it_is_extracted():
    script = verification_script()
    assert script.startswith("set -eu;"), "every command's failure fails the build"
    assert "release=\"" + RELEASE_URL + "\"" in script
    assert f'tarball="{TARBALL}"' in script and f'"${{release}}/{CHECKSUMS}"' in script
    assert "sha256sum -c" in script
    assert script.index("curl") < script.index("sha256sum -c") < script.index("tar -x")


def test_only_the_handler_and_the_shared_code_are_copied_from_the_context():
    sources = []
    for instruction, arguments in instructions():
        if instruction in ("COPY", "ADD") and not arguments.startswith("--from="):
            sources += arguments.split()[:-1]
    assert sources and all(
        source == "functions/__init__.py" or source.startswith(("functions/deploy/", "functions/shared/"))
        for source in sources
    )
    assert {"functions/__init__.py", "functions/shared/", "functions/deploy/"} <= set(sources)
    for source in sources:
        assert (CONTEXT / source).exists(), source


def test_the_handler_is_compiled_after_it_is_copied_as_the_zip_functions_are():
    steps = instructions()
    last_copy = max(index for index, (instruction, _) in enumerate(steps) if instruction == "COPY")
    compiles = [index for index, (instruction, arguments) in enumerate(steps)
                if instruction == "RUN" and "-m compileall" in arguments]
    assert len(compiles) == 1 and compiles[0] > last_copy
    arguments = steps[compiles[0]][1]
    assert f"--invalidation-mode {BYTECODE_INVALIDATION}" in arguments
    assert arguments.endswith('"${LAMBDA_TASK_ROOT}/functions"')


def test_the_command_is_the_deploy_handler():
    assert instructions()[-1] == ("CMD", '["functions.deploy.app.handler"]')


def test_python_dependencies_are_the_projects_pins():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project_pins = {re.split(r"[\[=]", pin)[0]: pin for pin in pyproject["project"]["dependencies"]}
    requirements = [line for line in (CONTEXT / "functions" / "deploy" / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements
    for requirement in requirements:
        assert "==" in requirement
        assert project_pins[re.split(r"[\[=]", requirement)[0]] == requirement


# ---- the verification step, run ----


def fake_release(folder: Path, version: str, checksum_line: str | None) -> Path:
    """A release folder with the tarball and a checksums file; `checksum_line` as given, or the true one."""
    folder.mkdir()
    tarball = folder / f"astro_{version}_linux_amd64.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        body = b"#!/bin/sh\necho astro\n"
        entry = tarfile.TarInfo("astro")
        entry.size, entry.mode = len(body), 0o755
        archive.addfile(entry, io.BytesIO(body))
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    lines = [f"{'0' * 64}  astro_{version}_darwin_arm64.tar.gz"]
    lines.append(checksum_line if checksum_line is not None else f"{digest}  {tarball.name}")
    (folder / f"astro_{version}_checksums.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def run_verification(tmp_path):
    """Run the Dockerfile's download-and-verify step with a curl that serves a local release folder."""
    version = cli_version()

    def run(checksum_line: str | None = None) -> tuple[subprocess.CompletedProcess, Path]:
        release = fake_release(tmp_path / "release", version, checksum_line)
        bin_dir, work, install_dir = tmp_path / "bin", tmp_path / "work", tmp_path / "usr-local-bin"
        for folder in (bin_dir, work, install_dir):
            folder.mkdir()
        curl = bin_dir / "curl"
        curl.write_text(
            "#!/bin/sh\n"
            'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) url="$1"; shift;; esac; done\n'
            f'cp "{release}/$(basename "$url")" "$out"\n'
        )
        curl.chmod(0o755)
        script = verification_script().replace("/usr/local/bin", str(install_dir))
        completed = subprocess.run(
            ["sh", "-c", script], cwd=work, capture_output=True, text=True, timeout=60,
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "ASTRO_CLI_VERSION": version},
        )
        return completed, install_dir / "astro"

    return run


def test_verification_installs_a_tarball_that_matches_its_checksum(run_verification):
    completed, installed = run_verification()
    assert completed.returncode == 0, completed.stderr
    assert installed.exists() and os.access(installed, os.X_OK)


def test_verification_fails_the_build_on_a_mismatching_checksum(run_verification):
    version = cli_version()
    completed, installed = run_verification(f"{'f' * 64}  astro_{version}_linux_amd64.tar.gz")
    assert completed.returncode != 0 and not installed.exists()


def test_verification_fails_the_build_without_a_checksum_for_the_tarball(run_verification):
    completed, installed = run_verification("")
    assert completed.returncode != 0 and not installed.exists()
