"""The GitHub Action without a runner: action.yml read as GitHub reads it, and its steps' shell run in order with
bash as a runner runs them, the few expressions it uses substituted, against `serve`."""

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from local_mode.project import EXAMPLES_DIR, PROJECT_ROOT

ACTION = yaml.safe_load((PROJECT_ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHA = "a1b2c3d4" * 5
GITHUB = {"action_path": str(PROJECT_ROOT), "sha": SHA, "event.repository.name": "marketing_etl"}
# How a runner runs a step's `run:` with `shell: bash`.
BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")


@dataclass
class ActionRun:
    """One use of the action: its inputs (`with:`), the environment and folder of the job, the steps' outputs."""

    inputs: dict[str, str]
    environment: dict[str, str]
    workspace: Path
    runner_temp: Path
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def evaluate(self, text: str) -> str:
        return EXPRESSION.sub(lambda match: self._value(match[1]), text)

    def _value(self, expression: str) -> str:
        scope, _, name = expression.partition(".")
        if scope == "inputs" and name in ACTION["inputs"]:
            given = self.inputs.get(name)
            return given if given is not None else self.evaluate(str(ACTION["inputs"][name].get("default", "")))
        if scope == "github" and name in GITHUB:
            return GITHUB[name]
        step, outputs, output = name.partition(".outputs.")
        if scope == "steps" and outputs and step in self.step_outputs:
            return self.step_outputs[step].get(output, "")
        pytest.fail(f"action.yml uses an expression this test does not know: {expression}")

    def run_step(self, step: dict) -> subprocess.CompletedProcess:
        assert step["shell"] == "bash"
        output = self.runner_temp / f"github_output_{len(self.step_outputs)}"
        output.write_text("")
        script = self.runner_temp / "step.sh"
        script.write_text(self.evaluate(step["run"]))
        environment = {**self.environment, "RUNNER_TEMP": str(self.runner_temp), "GITHUB_OUTPUT": str(output),
                       **{name: self.evaluate(str(value)) for name, value in step.get("env", {}).items()}}
        completed = subprocess.run([*BASH, str(script)], cwd=self.workspace, env=environment, capture_output=True,
                                   text=True, timeout=300)
        self.step_outputs[step.get("id", f"step{len(self.step_outputs)}")] = dict(
            line.split("=", 1) for line in output.read_text().splitlines())
        return completed

    def outputs(self) -> dict[str, str]:
        return {name: self.evaluate(spec["value"]) for name, spec in ACTION["outputs"].items()}


def test_the_action_is_composite_with_its_inputs_outputs_and_defaults():
    inputs = ACTION["inputs"]

    assert ACTION["runs"]["using"] == "composite"
    assert {name for name, spec in inputs.items() if spec.get("required")} == {
        "api-url", "artifacts", "workspace", "deployment"}
    assert {name: spec["default"] for name, spec in inputs.items() if "default" in spec} == {
        "dags-folder": "dags", "repo": "${{ github.event.repository.name }}", "commit": "${{ github.sha }}",
        "wait": "true", "timeout": "", "region": "", "dry-run": "false", "force": "false"}
    assert {name: spec["value"] for name, spec in ACTION["outputs"].items()} == {
        output: f"${{{{ steps.push.outputs.{output} }}}}" for output in ("execution-name", "status",
                                                                       "dag-bundle", "dag-bundle-version")}
    assert all(description["description"] for description in [*inputs.values(), *ACTION["outputs"].values()])


def test_no_step_interpolates_an_input_into_its_shell():
    for step in ACTION["runs"]["steps"]:
        assert not re.search(r"\$\{\{\s*inputs\b", step["run"]), step["name"]


@pytest.fixture
def job(tmp_path) -> ActionRun:
    """A job's checkout with the example repo's DAGs in `dags/`, using the action with the inputs it requires."""
    shutil.copytree(EXAMPLES_DIR / "marketing_etl", tmp_path / "checkout" / "dags")
    (tmp_path / "runner_temp").mkdir()
    environment = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
    inputs = {"api-url": "http://127.0.0.1:1/prod", "artifacts": "s3://local-artifacts/actions",
              "workspace": "analytics", "deployment": "production"}
    return ActionRun(inputs, environment, tmp_path / "checkout", tmp_path / "runner_temp")


def test_the_actions_steps_install_the_client_push_and_expose_the_outcome(job, served):
    job.inputs["api-url"] = served.api_url
    job.environment = {name: value for name, value in served.ci_environment().items()
                       if name not in ("PYTHONPATH", "VIRTUAL_ENV")}

    for step in ACTION["runs"]["steps"]:
        completed = job.run_step(step)
        assert completed.returncode == 0, f"{step['name']}:\n{completed.stdout}{completed.stderr}"

    outputs = job.outputs()
    assert outputs["status"] == "SUCCEEDED"
    assert re.fullmatch(rf"marketing_etl-{SHA[:8]}-\w+", outputs["execution-name"])
    assert outputs["dag-bundle-version"] and f"version {outputs['dag-bundle-version']}" in completed.stdout


@pytest.fixture
def recording_client(tmp_path) -> Path:
    """The client's venv with an `astro-dag-deploy` that only records its arguments, one a line."""
    recorded = tmp_path / "arguments"
    command = tmp_path / "runner_temp" / "astro-dag-deploy" / "bin" / "astro-dag-deploy"
    command.parent.mkdir(parents=True)
    command.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > '{recorded}'\n")
    command.chmod(0o755)
    return recorded


def test_inputs_reach_the_client_as_arguments_never_as_shell(job, recording_client):
    hostile = "dags $(touch pwned) `touch pwned`; touch pwned"
    job.inputs |= {"dags-folder": hostile, "wait": "false", "timeout": "600", "region": "eu-west-1", "commit": "",
                   "dry-run": "true", "force": "true"}
    [push] = [step for step in ACTION["runs"]["steps"] if step.get("id") == "push"]

    completed = job.run_step(push)

    assert completed.returncode == 0, completed.stderr
    assert not list(job.workspace.parent.rglob("pwned"))
    assert recording_client.read_text().splitlines() == [
        "push", hostile, "--artifacts", "s3://local-artifacts/actions", "--api-url", job.inputs["api-url"],
        "--workspace", "analytics", "--deployment", "production", "--repo", "marketing_etl",
        "--github-output", str(job.runner_temp / "github_output_0"), "--timeout", "600", "--region", "eu-west-1",
        "--dry-run", "--force"]
