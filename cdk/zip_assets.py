"""What a zip function's asset holds: the `functions` package's `__init__.py`, the function's folder and shared/,
each module with its bytecode compiled for the functions' runtime.

Lambda's task root is read-only, so a module the zip holds no bytecode for is compiled again at every cold start:
some 20 ms of a step's import. The bytecode must come from an interpreter of the runtime's version (its format
changes with every minor version), which synthesis looks for where PDM's findpython does. The files are
checked-hash: valid whatever times the zip gives the sources, and never trusted over a source edited in the console.
"""

import functools
import hashlib
import subprocess
from pathlib import Path

import jsii
from aws_cdk import Annotations, AssetHashType, BundlingOptions, CopyOptions, FileSystem, IgnoreMode, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from findpython.providers import ALL_PROVIDERS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Every asset is staged from the project root, so that each function imports as `functions.<folder>`.
FUNCTIONS_PACKAGE = "functions"
SHARED_FOLDER = "shared"
RUNTIME = lambda_.Runtime.PYTHON_3_12
BYTECODE_INVALIDATION = "checked-hash"
COMPILE_TIMEOUT_SECONDS = 120


def runtime_version(runtime: lambda_.Runtime = RUNTIME) -> tuple[int, int]:
    """(3, 12) for python3.12."""
    major, minor = runtime.name.removeprefix("python").split(".")
    return int(major), int(minor)


@functools.cache
def runtime_interpreter() -> Path | None:
    """An interpreter of the runtime's version on this machine (`python3.12` on PATH, in pyenv, asdf, uv ...), or
    None. Only the candidates so named are run to check them: asking findpython for a version runs every
    interpreter it knows of, seconds on a machine with many."""
    version = runtime_version()
    name = "python{}.{}".format(*version)
    for provider_class in ALL_PROVIDERS.values():
        provider = provider_class.create()
        for python in provider.find_pythons() if provider else ():
            if python.executable.name == name and python.is_valid() and (python.major, python.minor) == version:
                return python.executable
    return None


def asset_exclude(*folders: str) -> list[str]:
    """dockerignore patterns, against the project root, keeping only the `functions` package's `__init__.py` and
    these folders of it, without the checkout's bytecode."""
    return [
        "*",
        f"!{FUNCTIONS_PACKAGE}",
        f"{FUNCTIONS_PACKAGE}/*",
        f"!{FUNCTIONS_PACKAGE}/__init__.py",
        *(f"!{FUNCTIONS_PACKAGE}/{folder}" for folder in folders),
        "**/__pycache__",
        "**/*.pyc",
    ]


def bytecode_path(source: Path, version: tuple[int, int]) -> Path:
    """Where CPython of this version looks for the bytecode of `source`."""
    major, minor = version
    return source.parent / "__pycache__" / f"{source.stem}.cpython-{major}{minor}.pyc"


# (interpreter, module path in the asset, hash of its source) -> its bytecode. Every asset carries shared/: each
# module is compiled once per process, however many assets (and synthesized stacks, in tests) hold it.
_compiled: dict[tuple[Path, str, str], bytes] = {}


def compile_bytecode(directory: Path, interpreter: Path, version: tuple[int, int] = runtime_version()) -> None:
    """Write the bytecode of every module under `directory`, compiled by this interpreter (of this version). The
    paths recorded in it are relative to `directory`, so the asset is the same on every machine."""
    sources = sorted(directory.rglob("*.py"))
    keys = {source: (interpreter, source.relative_to(directory).as_posix(),
                     hashlib.sha256(source.read_bytes()).hexdigest()) for source in sources}
    missing = [str(source) for source in sources if keys[source] not in _compiled]
    if missing:
        completed = subprocess.run(
            [str(interpreter), "-m", "compileall", "-q", "--invalidation-mode", BYTECODE_INVALIDATION,
             "-s", str(directory), *missing],
            capture_output=True, text=True, timeout=COMPILE_TIMEOUT_SECONDS,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{interpreter} could not compile {directory}: "
                               f"{(completed.stdout + completed.stderr)[-2000:]}")
    for source in sources:
        compiled = bytecode_path(source, version)
        if keys[source] in _compiled:
            compiled.parent.mkdir(exist_ok=True)
            compiled.write_bytes(_compiled[keys[source]])
        else:
            _compiled[keys[source]] = compiled.read_bytes()


def stage_zip_asset(folder: str, destination: Path, interpreter: Path | None,
                    project_root: Path = PROJECT_ROOT) -> None:
    """Write into `destination` what the zip of function `folder` holds, compiled by `interpreter` if given."""
    FileSystem.copy_directory(
        str(project_root), str(destination),
        CopyOptions(exclude=asset_exclude(folder, SHARED_FOLDER), ignore_mode=IgnoreMode.DOCKER),
    )
    if interpreter is not None:
        compile_bytecode(destination, interpreter)


@jsii.implements(ILocalBundling)
class _StagedHere:
    """Bundles on this machine, always: without an interpreter of the runtime's version, the asset holds sources
    only (the stack says so in a warning) rather than needing Docker."""

    def __init__(self, folder: str):
        self._folder = folder

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        stage_zip_asset(self._folder, Path(output_dir), runtime_interpreter())
        return True


def asset_contents() -> str:
    """Besides the sources, what every zip asset holds on this machine."""
    if runtime_interpreter() is None:
        return "sources only"
    return "{} bytecode of cpython-{}{}".format(BYTECODE_INVALIDATION, *runtime_version())


def zip_code(folder: str) -> lambda_.Code:
    """The code of the zip function whose handler is in functions/<folder>/."""
    exclude = asset_exclude(folder, SHARED_FOLDER)
    return lambda_.Code.from_asset(
        str(PROJECT_ROOT),
        exclude=exclude,
        ignore_mode=IgnoreMode.DOCKER,
        # The sources' hash and what comes with them: synthesized again once a Python of the runtime's version is
        # there, the asset changes (a new key for CloudFormation, a new folder in cdk.out) though its sources do not.
        asset_hash=FileSystem.fingerprint(str(PROJECT_ROOT), exclude=exclude, ignore_mode=IgnoreMode.DOCKER,
                                          extra_hash=asset_contents()),
        asset_hash_type=AssetHashType.CUSTOM,
        # The image is never pulled: the local bundling always succeeds.
        bundling=BundlingOptions(image=RUNTIME.bundling_image, local=_StagedHere(folder)),
    )


def warn_without_bytecode(scope: Construct) -> None:
    """Say at synthesis when the zip functions will compile their modules at every cold start."""
    if runtime_interpreter() is None:
        version = ".".join(map(str, runtime_version()))
        Annotations.of(scope).add_warning_v2(
            "astro-dag-deploy:no-bytecode",
            f"No Python {version} found on this machine: the zip functions ship their sources only, which every "
            f"cold start compiles again (some 20 ms each). Install Python {version} (pyenv, uv, the system's "
            f"packages) and synthesize again to ship their bytecode.",
        )
