"""The CI client installed alone, as a CI job installs it: a fresh virtualenv and `pip install ./client`, with this
machine's pip configuration (its index and wheel locations come from pip's config files and the environment)."""

import os
import subprocess
import sys
import time
from pathlib import Path

from local_mode.project import EXAMPLES_DIR, PROJECT_ROOT

CLIENT_DIR = PROJECT_ROOT / "client"
FOOTPRINT_LIMIT_BYTES = 40_000_000
# The stack's and the local mode's dependencies, and the checkout's own packages: none of them comes with the client.
NOT_INSTALLED = ("aws_cdk", "moto", "pydantic", "aws_lambda_powertools", "functions", "local_mode")


def tree_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def run(*argv: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_client_installs_alone_in_a_fresh_venv_and_pushes_to_serve(request, tmp_path):
    environment = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    started = time.monotonic()
    created = run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path, env=environment)
    assert created.returncode == 0, created.stderr
    bin_dir = tmp_path / "venv" / "bin"
    [site_packages] = (tmp_path / "venv" / "lib").glob("python3.*/site-packages")
    before = tree_bytes(site_packages)
    # Installing while `serve` creates its stack (if this process has none running yet): the test's two slow parts.
    install = subprocess.Popen([bin_dir / "pip", "install", "--quiet", CLIENT_DIR], cwd=tmp_path, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = request.getfixturevalue("served")
    install_output, _ = install.communicate(timeout=300)
    assert install.returncode == 0, install_output
    seconds = time.monotonic() - started
    footprint = tree_bytes(site_packages) - before
    print(f"fresh venv + pip install ./client: {seconds:.1f} s (alongside serve's start), "
          f"site-packages grew by {footprint / 1e6:.1f} MB")

    assert footprint <= FOOTPRINT_LIMIT_BYTES
    found = run(bin_dir / "python", "-c", "import importlib.util, sys\n"
                "print(' '.join(name for name in sys.argv[1:] if importlib.util.find_spec(name)))",
                *NOT_INSTALLED, cwd=tmp_path, env=environment)
    assert found.returncode == 0 and found.stdout.strip() == "", found.stdout + found.stderr

    help_text = run(bin_dir / "astro-dag-deploy", "--help", cwd=tmp_path, env=environment)
    assert help_text.returncode == 0
    for command in ("submit", "push", "status", "targets", "local", "serve", "bench"):
        assert f"    {command} " in help_text.stdout
    local = run(bin_dir / "astro-dag-deploy", "local", cwd=tmp_path, env=environment)
    assert local.returncode == 2 and local.stdout == "" and local.stderr.count("\n") == 1
    assert "needs the project checkout" in local.stderr and "&& make demo" in local.stderr

    # Forced: the session's serve may hold these files already (another test pushed them), a ship is wanted.
    pushed = run(bin_dir / "astro-dag-deploy", "push", EXAMPLES_DIR / "marketing_etl",
                 "--artifacts", "s3://local-artifacts/slim", "--api-url", served.api_url,
                 "--workspace", "analytics", "--deployment", "production", "--repo", "marketing_etl",
                 "--wait", "--poll-interval", "0.2", "--force", cwd=tmp_path, env=served.ci_environment())
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "SUCCEEDED" in pushed.stdout and "deployed DAG bundle version" in pushed.stdout
