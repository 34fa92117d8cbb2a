"""The cold-start proxy: which folders are zip functions, what their asset holds, what the import sees."""

import zipfile
from pathlib import Path

from cdk.zip_assets import stage_zip_asset
from local_mode.bench import cold_start
from local_mode.bench.cold_start import (
    BASELINE_MODULE, DEPTH_FRAMES, ColdStart, LambdaPython, build_asset_zip, installed_closure, lambda_environment,
    lambda_pins, paired_imports, zip_function_folders,
)
from local_mode.project import FUNCTIONS_DIR


def functions_tree(root: Path) -> Path:
    for relative in ("__init__.py", "upload/app.py", "upload/copying.py", "upload/__pycache__/app.cpython-311.pyc",
                     "shared/models.py", "shared/stray.pyc", "parse/app.py", "deploy/app.py", "deploy/Dockerfile"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("x = 1\n")
    return root


def test_zip_functions_are_the_handler_folders_without_a_dockerfile(tmp_path):
    assert zip_function_folders(functions_tree(tmp_path)) == ["parse", "upload"]
    assert {"parse", "clear_prefix", "upload", "notify"} <= set(zip_function_folders(FUNCTIONS_DIR))


def test_the_asset_is_staged_as_the_stack_stages_it_the_step_and_shared_without_the_checkouts_bytecode(tmp_path):
    project = tmp_path / "project"
    functions_tree(project / "functions")
    (project / "README.md").write_text("not shipped\n")

    stage_zip_asset("upload", tmp_path / "staged", None, project_root=project)
    size = build_asset_zip(tmp_path / "staged", tmp_path / "upload.zip")

    assert size == (tmp_path / "upload.zip").stat().st_size > 0
    assert zipfile.ZipFile(tmp_path / "upload.zip").namelist() == [
        "functions/__init__.py", "functions/shared/models.py", "functions/upload/app.py",
        "functions/upload/copying.py",
    ]


def test_the_handler_and_boto3_are_imported_turn_about_each_pair_at_one_random_depth(tmp_path, monkeypatch):
    imported = []

    def import_milliseconds(module, folder, task_root, python, depth):
        imported.append((module, depth))
        return 200.0 if module == BASELINE_MODULE else 240.0

    monkeypatch.setattr(cold_start, "import_milliseconds", import_milliseconds)

    handler_ms, boto3_ms = paired_imports("upload", tmp_path, LambdaPython(tmp_path, tmp_path), runs=40)

    handler = "functions.upload.app"
    assert [module for module, _ in imported[:6]] == [handler, "boto3", "boto3", handler, handler, "boto3"]
    depths = [depth for _, depth in imported]
    assert depths[0::2] == depths[1::2]
    assert all(0 <= depth < DEPTH_FRAMES for depth in depths) and len(set(depths)) > 20
    assert ColdStart("upload", 1, handler_ms, boto3_ms).vs_boto3 == 1.2


def test_the_import_sees_lambdas_packages_only():
    names = {distribution.metadata["Name"].lower().replace("_", "-") for distribution in
             installed_closure(["boto3", "aws-lambda-powertools[parser,tracer]"])}
    assert {"boto3", "botocore", "aws-lambda-powertools", "aws-xray-sdk", "pydantic"} <= names
    assert not {"moto", "requests", "aws-cdk-lib", "awscli"} & names


def test_lambdas_packages_are_pinned_as_this_environment_has_them():
    pins = lambda_pins(["boto3"])
    assert pins == sorted(pins)
    assert f"boto3=={installed_closure(['boto3'])[0].version}" in pins
    assert {pin.split("==")[0].lower() for pin in pins} >= {"boto3", "botocore", "s3transfer", "jmespath"}


def test_the_import_runs_with_the_variables_lambda_sets(tmp_path):
    environment = lambda_environment("upload", tmp_path / "task", tmp_path / "packages")
    assert environment["LAMBDA_TASK_ROOT"] == str(tmp_path / "task")
    assert environment["PYTHONPATH"] == str(tmp_path / "packages")
    assert environment["_HANDLER"] == "functions.upload.app.handler"
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"
