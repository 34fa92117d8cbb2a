"""A cold-start proxy per zip function: its asset's zip size, and how long a fresh interpreter takes to import its
handler module from that asset, with what Lambda gives it, against how long the same interpreter takes to import
boto3 alone (the runtime's own floor), measured turn about.

- The interpreter is one of the functions' runtime version (Python 3.12), as the stack's synthesis finds it.
- The asset is staged as the stack stages it (cdk/zip_assets.py: functions/__init__.py, functions/<step>/ and
  functions/shared/, with their bytecode) and imported from there without writing bytecode, as from Lambda's
  read-only task root.
- The interpreter sees only the asset and the packages a function has in Lambda (boto3 from the runtime, the
  powertools layer), installed at the project's pins, with their bytecode, in a tool environment of their own
  (.tools/lambda-python3.12/): not this virtualenv, which holds many that Lambda does not (and that the X-Ray SDK
  would patch where it finds them).
- The variables the Lambda runtime sets (LAMBDA_TASK_ROOT, ...) make the Tracer and the X-Ray SDK take their
  in-Lambda paths.
"""

import importlib.metadata
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cdk.zip_assets import FUNCTIONS_PACKAGE, SHARED_FOLDER, runtime_interpreter, runtime_version, stage_zip_asset
from local_mode.project import FUNCTIONS_DIR, PROJECT_ROOT

# The module every probe also imports alone, turn about with the handler: the floor of any Python function.
BASELINE_MODULE = "boto3"
# cdk-assets zips directories with zlib level 9.
ZIP_LEVEL = 9
# What a zip function has in Lambda besides its asset: boto3 in the python3.12 runtime, and the public powertools
# layer of the version and extras the project pins.
LAMBDA_PACKAGES = ("boto3", "aws-lambda-powertools[parser,tracer]")
TOOLS_DIR = PROJECT_ROOT / ".tools"
INSTALLED_MARKER = "installed-pins.txt"
PROBE_TIMEOUT_SECONDS = 120
# CPython 3.12 keeps frames in 16 KiB chunks and maps a chunk afresh each time a call crosses into it: a loop that
# straddles a boundary (boto3's import compiles long regexes, recursively) pays a mapping per call, tens of ms in
# all (python/cpython#142183). Where the boundaries fall depends on the depth the import starts at, which Lambda's
# runtime sets and this probe cannot know: each pair of imports starts at one random depth of up to DEPTH_FRAMES
# small frames (over 16 KiB), so no one depth decides the figures.
DEPTH_FRAMES = 256
_IMPORT_PROBE = (
    "import importlib, sys, time\n"
    "def import_at_depth(frames):\n"
    "    if frames:\n"
    "        return import_at_depth(frames - 1)\n"
    "    started = time.perf_counter()\n"
    "    importlib.import_module(sys.argv[1])\n"
    "    return (time.perf_counter() - started) * 1000\n"
    "print(import_at_depth(int(sys.argv[2])))\n"
)


@dataclass(frozen=True)
class LambdaPython:
    """An interpreter of the functions' runtime version, and the packages Lambda gives a function."""

    interpreter: Path
    packages: Path  # a site-packages folder


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


def lambda_pins(requirements: Iterable[str] = LAMBDA_PACKAGES) -> list[str]:
    """`name==version` of every distribution these requirements need, as this virtualenv has them."""
    return sorted(f"{distribution.metadata['Name']}=={distribution.version}"
                  for distribution in installed_closure(requirements))


def lambda_packages(interpreter: Path, pins: list[str], tools_dir: Path = TOOLS_DIR) -> Path:
    """The site-packages of a tool environment of `interpreter` holding exactly these pins (made, or remade when
    they change; pip writes their bytecode as the runtime's and the layer's have it)."""
    major, minor = runtime_version()
    environment = tools_dir / f"lambda-python{major}.{minor}"
    marker = environment / INSTALLED_MARKER
    wanted = "\n".join(pins) + "\n"
    if not (marker.is_file() and marker.read_text() == wanted):
        shutil.rmtree(environment, ignore_errors=True)
        subprocess.run([str(interpreter), "-m", "venv", str(environment)], check=True)
        subprocess.run([str(environment / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--no-deps", *pins], check=True)
        marker.write_text(wanted)
    (site_packages,) = (environment / "lib").glob("python*/site-packages")
    return site_packages


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


def import_milliseconds(module: str, folder: str, task_root: Path, python: LambdaPython, depth: int) -> float:
    """Import `module` in the function's fresh interpreter, `depth` frames down: its path is the task root, then the
    packages (as Lambda's), without the interpreter's own site-packages (-S)."""
    completed = subprocess.run(
        [str(python.interpreter), "-S", "-c", _IMPORT_PROBE, module, str(depth)],
        cwd=task_root, env=lambda_environment(folder, task_root, python.packages), capture_output=True, text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed: {completed.stderr[-2000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def paired_imports(folder: str, task_root: Path, python: LambdaPython, runs: int) -> tuple[list[float], list[float]]:
    """`runs` imports of the handler and as many of boto3 alone, turn about (each pair in alternating order, at one
    random depth), so that whatever else the machine does weighs on both alike."""
    depths = random.Random(folder)
    handler_ms, boto3_ms = [], []
    for run in range(runs):
        depth = depths.randrange(DEPTH_FRAMES)
        pair = [(handler_module(folder), handler_ms), (BASELINE_MODULE, boto3_ms)]
        for module, timings in pair if run % 2 == 0 else reversed(pair):
            timings.append(import_milliseconds(module, folder, task_root, python, depth))
    return handler_ms, boto3_ms


def measure_cold_starts(runs: int, progress: Callable[[str], None],
                        functions_dir: Path = FUNCTIONS_DIR) -> list[ColdStart]:
    interpreter = runtime_interpreter()
    if interpreter is None:
        version = ".".join(map(str, runtime_version()))
        raise RuntimeError(f"no Python {version} on this machine: cold starts are measured in the functions' runtime "
                           f"version; install it (pyenv install {version}, uv python install {version}, ...)")
    progress(f"Lambda's packages for {interpreter.name}, at the project's pins (installed once)")
    python = LambdaPython(interpreter, lambda_packages(interpreter, lambda_pins()))
    results = []
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-assets-") as scratch:
        for folder in zip_function_folders(functions_dir):
            progress(f"{folder}: asset, then {runs} fresh imports of its handler and {runs} of boto3, turn about")
            task_root = Path(scratch) / "task-roots" / folder
            stage_zip_asset(folder, task_root, interpreter)
            zip_bytes = build_asset_zip(task_root, Path(scratch) / f"{folder}.zip")
            import_ms, boto3_ms = paired_imports(folder, task_root, python, runs)
            results.append(ColdStart(folder, zip_bytes, import_ms, boto3_ms))
    return results
