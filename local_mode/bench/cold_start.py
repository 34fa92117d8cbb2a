"""A cold-start proxy per zip function: its asset's zip size, and how long a fresh interpreter takes to import its
handler module from that asset, with what Lambda gives it, against how long the same interpreter takes to import
boto3 alone (the runtime's own floor), measured turn about.

- The asset is staged as the stack stages it (CDK's own copy of the project root with the stack's exclude
  patterns: functions/__init__.py, functions/<step>/ and functions/shared/, no bytecode) and imported from there
  without writing bytecode: Lambda's task root is read-only and the zip holds none, so every cold start compiles
  our modules.
- The interpreter sees only the asset and the packages a function has in Lambda (boto3 from the runtime, the
  powertools layer), not this virtualenv, which holds many that Lambda does not (and that the X-Ray SDK would
  patch where it finds them).
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

from cdk.functions import FUNCTIONS_PACKAGE, SHARED_FOLDER, stage_zip_asset
from local_mode.project import FUNCTIONS_DIR

# The module every probe also imports alone, turn about with the handler: the floor of any Python function.
BASELINE_MODULE = "boto3"
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
    boto3_ms: list[float]  # `import boto3` alone, in the same kind of interpreter, turn about with import_ms

    @property
    def median_import_ms(self) -> float:
        return statistics.median(self.import_ms)

    @property
    def median_boto3_ms(self) -> float:
        return statistics.median(self.boto3_ms)

    @property
    def vs_boto3(self) -> float:
        return self.median_import_ms / self.median_boto3_ms


def zip_function_folders(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """The folders of functions/ that are zip functions: a handler module, and no Dockerfile (an image function)."""
    return sorted(
        folder.name
        for folder in functions_dir.iterdir()
        if folder.is_dir() and folder.name != SHARED_FOLDER and (folder / "app.py").is_file()
        and not (folder / "Dockerfile").exists()
    )


def build_asset_zip(staged: Path, archive_path: Path) -> int:
    """Zip a staged asset as cdk-assets does; return the zip's size in bytes."""
    with zipfile.ZipFile(archive_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as archive:
        for file in sorted(path for path in staged.rglob("*") if path.is_file()):
            archive.write(file, file.relative_to(staged).as_posix())
    return archive_path.stat().st_size


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
        "_HANDLER": f"{FUNCTIONS_PACKAGE}.{folder}.app.handler",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "AstroDagDeploy",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(packages),
    }


def handler_module(folder: str) -> str:
    return f"{FUNCTIONS_PACKAGE}.{folder}.app"


def import_milliseconds(module: str, folder: str, task_root: Path, packages: Path) -> float:
    """Import `module` in the function's fresh interpreter: its path is the task root, then the packages (as
    Lambda's), without this virtualenv's site-packages (-S)."""
    completed = subprocess.run(
        [sys.executable, "-S", "-c", _IMPORT_PROBE, module],
        cwd=task_root, env=lambda_environment(folder, task_root, packages), capture_output=True, text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {completed.stderr[-2000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def paired_imports(folder: str, task_root: Path, packages: Path, runs: int) -> tuple[list[float], list[float]]:
    """`runs` imports of the handler and as many of boto3 alone, turn about (each pair in alternating order), so
    that whatever else the machine does weighs on both alike."""
    handler_ms, boto3_ms = [], []
    for run in range(runs):
        pair = [(handler_module(folder), handler_ms), (BASELINE_MODULE, boto3_ms)]
        for module, timings in pair if run % 2 == 0 else reversed(pair):
            timings.append(import_milliseconds(module, folder, task_root, packages))
    return handler_ms, boto3_ms


def measure_cold_starts(runs: int, progress: Callable[[str], None],
                        functions_dir: Path = FUNCTIONS_DIR) -> list[ColdStart]:
    results = []
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-assets-") as scratch:
        packages = Path(scratch) / "lambda-packages"
        link_lambda_packages(packages)
        for folder in zip_function_folders(functions_dir):
            progress(f"{folder}: asset, then {runs} fresh imports of its handler and {runs} of boto3, turn about")
            task_root = Path(scratch) / "task-roots" / folder
            stage_zip_asset(folder, task_root)
            zip_bytes = build_asset_zip(task_root, Path(scratch) / f"{folder}.zip")
            import_ms, boto3_ms = paired_imports(folder, task_root, packages, runs)
            results.append(ColdStart(folder, zip_bytes, import_ms, boto3_ms))
    return results
