"""A cold-start proxy per zip function: its asset's zip size, and how long a fresh interpreter takes to import its
handler module from that asset, with what Lambda gives it.

- The asset is built as the stack builds it (functions/<step>/ and functions/shared/, no bytecode) and imported
  from its unpacked copy without writing bytecode: Lambda's task root is read-only and the zip holds none, so
  every cold start compiles our modules.
- The interpreter sees only the asset and the packages a function has in Lambda (boto3 from the runtime, the
  powertools layer), not this virtualenv: the Tracer patches every library it finds installed (requests, ...),
  and the virtualenv holds many that Lambda does not.
- The variables the Lambda runtime sets (LAMBDA_TASK_ROOT, ...) make the Tracer and the X-Ray SDK take their
  in-Lambda paths.
"""

import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from local_mode.project import FUNCTIONS_DIR

SHARED_FOLDER = "shared"
SKIPPED_DIRS = {"__pycache__"}
SKIPPED_SUFFIXES = (".pyc",)
# cdk-assets zips directories with zlib level 9.
ZIP_LEVEL = 9
# What a zip function has in Lambda besides its asset: boto3 in the python3.12 runtime, and the public powertools
# layer of the version and extras the project pins.
LAMBDA_PACKAGES = ("boto3", "aws-lambda-powertools[parser,tracer]")
BYTECODE_DIR = "__pycache__"
PROBE_TIMEOUT_SECONDS = 120
_IMPORT_PROBE = (
    "import importlib, sys, time\n"
    "started = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


@dataclass(frozen=True)
class ColdStart:
    function: str
    zip_bytes: int
    import_ms: list[float]

    @property
    def median_import_ms(self) -> float:
        return statistics.median(self.import_ms)


def zip_function_folders(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """The folders of functions/ that are zip functions: a handler module, and no Dockerfile (an image function)."""
    return sorted(
        folder.name
        for folder in functions_dir.iterdir()
        if folder.is_dir() and folder.name != SHARED_FOLDER and (folder / "app.py").is_file()
        and not (folder / "Dockerfile").exists()
    )


def asset_files(functions_dir: Path, folder: str) -> list[str]:
    """The files of a zip function's asset, relative to functions/: the package's __init__.py, its folder and
    shared/, without bytecode."""
    found = ["__init__.py"]
    for top in (folder, SHARED_FOLDER):
        for root, dirs, files in os.walk(functions_dir / top):
            dirs[:] = sorted(name for name in dirs if name not in SKIPPED_DIRS)
            found += [
                (Path(root) / name).relative_to(functions_dir).as_posix()
                for name in sorted(files)
                if not name.endswith(SKIPPED_SUFFIXES)
            ]
    return found


def build_asset_zip(functions_dir: Path, folder: str, target: Path) -> int:
    """Write the function's asset zip to `target`; return its size in bytes."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as archive:
        for relative in asset_files(functions_dir, folder):
            archive.write(functions_dir / relative, f"{functions_dir.name}/{relative}")
    return target.stat().st_size


def installed_closure(requirements: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions these requirements need (with their extras), dependencies included."""
    found: dict[str, importlib.metadata.Distribution] = {}
    extras_seen: dict[str, set[str]] = {}
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found and set(requirement.extras) <= extras_seen[name]:
            continue
        distribution = found.get(name) or importlib.metadata.distribution(requirement.name)
        found[name] = distribution
        extras_seen.setdefault(name, set()).update(requirement.extras)
        wanted = {"", *requirement.extras}
        for text in distribution.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in wanted):
                pending.append(dependency)
    return list(found.values())


def link_lambda_packages(target: Path, requirements: Iterable[str] = LAMBDA_PACKAGES) -> None:
    """Make `target` a site-packages folder holding only these distributions (links to the installed files)."""
    (target / BYTECODE_DIR).mkdir(parents=True, exist_ok=True)
    for distribution in installed_closure(requirements):
        for file in distribution.files or []:
            parts = Path(file).parts
            if parts[0] == "..":
                continue  # scripts installed outside site-packages
            # A package folder is linked whole; a top-level module's bytecode sits in the shared __pycache__.
            entry = Path(*parts[:2]) if parts[0] == BYTECODE_DIR else Path(parts[0])
            link = target / entry
            if not link.exists():
                link.symlink_to(Path(distribution.locate_file(entry)).resolve())


def lambda_environment(folder: str, task_root: Path, packages: Path) -> dict[str, str]:
    """The variables the Lambda Python runtime sets, plus those every function of the stack gets."""
    inherited = {name: value for name, value in os.environ.items()
                 if not name.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_"))}
    return {
        **inherited,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": f"bench-{folder}",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": f"functions.{folder}.app.handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "AstroDagDeploy",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(packages),
    }


def import_milliseconds(folder: str, task_root: Path, packages: Path) -> float:
    """Import `functions.<folder>.app` in a fresh interpreter whose path is the task root, then the packages (as Lambda's),
    without this virtualenv's site-packages (-S)."""
    completed = subprocess.run(
        [sys.executable, "-S", "-c", _IMPORT_PROBE, f"functions.{folder}.app"],
        cwd=task_root, env=lambda_environment(folder, task_root, packages), capture_output=True, text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing functions.{folder}.app failed: {completed.stderr[-2000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def measure_cold_starts(runs: int, progress: Callable[[str], None],
                        functions_dir: Path = FUNCTIONS_DIR) -> list[ColdStart]:
    results = []
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-assets-") as scratch:
        packages = Path(scratch) / "lambda-packages"
        link_lambda_packages(packages)
        for folder in zip_function_folders(functions_dir):
            progress(f"{folder}: asset zip and {runs} fresh imports")
            archive = Path(scratch) / f"{folder}.zip"
            zip_bytes = build_asset_zip(functions_dir, folder, archive)
            task_root = Path(scratch) / "task-roots" / folder
            with zipfile.ZipFile(archive) as unpacked:
                unpacked.extractall(task_root)
            import_ms = [import_milliseconds(folder, task_root, packages) for _ in range(runs)]
            results.append(ColdStart(folder, zip_bytes, import_ms))
    return results
