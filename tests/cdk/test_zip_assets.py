"""A zip function's asset: its folder, shared/ and the package's __init__.py, with the runtime's bytecode, which the
runtime loads instead of compiling, and never over a source edited after it."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from aws_cdk import App, CfnWaitConditionHandle, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match

from cdk import zip_assets
from cdk.zip_assets import (
    RUNTIME, bytecode_path, compile_bytecode, runtime_interpreter, runtime_version, stage_zip_asset,
    warn_without_bytecode, zip_code,
)

# A pyc's header: magic (4 bytes), flags (4), then the source's hash (8). Flags 0b11: hash-based, checked.
CHECKED_HASH_FLAGS = 0b11


@pytest.fixture(scope="module")
def runtime_python() -> Path:
    interpreter = runtime_interpreter()
    if interpreter is None:
        pytest.fail("no Python {}.{} on this machine: the zip assets' bytecode needs one (pyenv, uv, the system's "
                    "packages)".format(*runtime_version()))
    return interpreter


def project(root: Path) -> Path:
    """A project with two functions and a shared module."""
    files = {
        "functions/__init__.py": "",
        "functions/shared/__init__.py": "",
        "functions/shared/values.py": "VALUE = 1\n",
        "functions/upload/__init__.py": "",
        "functions/upload/app.py": "from functions.shared.values import VALUE\n",
        "functions/notify/__init__.py": "",
        "functions/notify/app.py": "from functions.shared.values import VALUE\n",
        "README.md": "not shipped\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def run(interpreter: Path, asset: Path, code: str) -> subprocess.CompletedProcess:
    """Run `code` from the asset as Lambda does: the task root first, no site-packages, bytecode never written."""
    return subprocess.run([str(interpreter), "-S", "-v", "-c", code], cwd=asset, capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True)


def small_stack() -> Stack:
    stack = Stack(App(), "Small")
    CfnWaitConditionHandle(stack, "Placeholder")  # a template without resources is itself a warning
    return stack


def runtime_magic(interpreter: Path) -> bytes:
    completed = subprocess.run([str(interpreter), "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
                               capture_output=True, text=True, check=True)
    return bytes.fromhex(completed.stdout.strip())


def test_the_runtime_version_is_the_functions_runtime():
    assert RUNTIME.name == "python{}.{}".format(*runtime_version())


def test_every_module_has_the_runtimes_checked_bytecode_with_no_machine_path(tmp_path, runtime_python):
    asset = tmp_path / "asset"
    stage_zip_asset("upload", asset, runtime_python, project_root=project(tmp_path / "project"))

    sources = sorted(asset.rglob("*.py"))
    assert [source.relative_to(asset).as_posix() for source in sources] == [
        "functions/__init__.py", "functions/shared/__init__.py", "functions/shared/values.py",
        "functions/upload/__init__.py", "functions/upload/app.py",
    ]
    assert sorted(asset.rglob("*.pyc")) == sorted(bytecode_path(source, runtime_version()) for source in sources)
    magic = runtime_magic(runtime_python)
    for source in sources:
        compiled = bytecode_path(source, runtime_version()).read_bytes()
        assert compiled[:4] == magic
        assert int.from_bytes(compiled[4:8], "little") == CHECKED_HASH_FLAGS
        assert str(tmp_path).encode() not in compiled


def test_the_runtime_loads_the_bytecode_instead_of_compiling(tmp_path, runtime_python):
    asset = tmp_path / "asset"
    stage_zip_asset("upload", asset, runtime_python, project_root=project(tmp_path / "project"))

    loaded = run(runtime_python, asset, "import functions.upload.app").stderr

    for module in ("functions/upload/app", "functions/shared/values"):
        folder, name = module.rsplit("/", 1)
        assert re.search(rf"code object from '[^']*{folder}/__pycache__/{name}\.cpython-\d+\.pyc'", loaded)


def test_a_source_edited_after_compiling_is_what_runs(tmp_path, runtime_python):
    asset = tmp_path / "asset"
    stage_zip_asset("upload", asset, runtime_python, project_root=project(tmp_path / "project"))
    (asset / "functions/shared/values.py").write_text("VALUE = 2\n")

    completed = run(runtime_python, asset, "from functions.upload.app import VALUE; print(VALUE)")

    assert completed.stdout.strip() == "2"


def test_each_module_is_compiled_once_however_many_assets_hold_it(tmp_path, runtime_python, monkeypatch):
    compiled: list[str] = []
    real_run = subprocess.run

    def counting_run(command, **options):
        compiled.extend(Path(argument).relative_to(Path(command[command.index("-s") + 1])).as_posix()
                        for argument in command[command.index("-s") + 2:])
        return real_run(command, **options)

    monkeypatch.setattr(zip_assets, "_compiled", {})
    monkeypatch.setattr(zip_assets.subprocess, "run", counting_run)
    root = project(tmp_path / "project")
    for index, folder in enumerate(("upload", "notify", "upload")):
        stage_zip_asset(folder, tmp_path / f"{index}-{folder}", runtime_python, project_root=root)

    assert sorted(compiled) == [
        "functions/__init__.py", "functions/notify/__init__.py", "functions/notify/app.py",
        "functions/shared/__init__.py", "functions/shared/values.py", "functions/upload/__init__.py",
        "functions/upload/app.py",
    ]
    first, again = (tmp_path / "0-upload", tmp_path / "2-upload")
    assert [path.read_bytes() for path in sorted(first.rglob("*.pyc"))] == [
        path.read_bytes() for path in sorted(again.rglob("*.pyc"))]


def test_a_module_that_does_not_compile_fails_the_synthesis_naming_it(tmp_path, runtime_python):
    asset = project(tmp_path / "asset")
    (asset / "functions/upload/broken.py").write_text("def broken(:\n")

    with pytest.raises(RuntimeError, match="broken.py"):
        compile_bytecode(asset, runtime_python)


def test_without_an_interpreter_of_the_runtime_the_asset_holds_sources_and_synthesis_warns(tmp_path, monkeypatch):
    asset = tmp_path / "asset"
    stage_zip_asset("upload", asset, None, project_root=project(tmp_path / "project"))
    assert not list(asset.rglob("__pycache__"))
    monkeypatch.setattr(zip_assets, "runtime_interpreter", lambda: None)
    stack = small_stack()

    warn_without_bytecode(stack)

    Annotations.from_stack(stack).has_warning(
        "/Small", Match.string_like_regexp(r"No Python 3\.12 found on this machine: the zip functions ship their "
                                          r"sources only.*Install Python 3\.12"))


def asset_key(folder: str) -> str:
    """The S3 key of a function's code, synthesized without building the asset."""
    app = App(context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "Keyed")
    function = lambda_.Function(stack, "Function", code=zip_code(folder), handler=f"functions.{folder}.app.handler",
                                runtime=RUNTIME)
    code = app.synth().get_stack_by_name("Keyed").template["Resources"][stack.get_logical_id(
        function.node.default_child)]["Properties"]["Code"]
    return code["S3Key"]


def test_the_assets_key_names_its_sources_and_the_bytecode_with_them(runtime_python, monkeypatch):
    with_bytecode = asset_key("upload")
    assert asset_key("upload") == with_bytecode != asset_key("notify")
    monkeypatch.setattr(zip_assets, "runtime_interpreter", lambda: None)

    # The same sources without bytecode are another asset: synthesizing again once a Python 3.12 is installed
    # updates the function, and never reuses a folder cdk.out holds without bytecode.
    assert asset_key("upload") != with_bytecode


def test_with_an_interpreter_of_the_runtime_synthesis_does_not_warn(runtime_python):
    stack = small_stack()

    warn_without_bytecode(stack)

    Annotations.from_stack(stack).has_no_warning("*", Match.any_value())
