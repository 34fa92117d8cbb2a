"""The stack, synthesized once per session (jsii takes seconds), and helpers to read its template."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aws_cdk import App

from cdk.app import build_stack
from cdk.stack import AstroDagDeployStack

# Different from cdk.json's examples and the defaults, so that every value is seen to reach the template.
TEST_CONTEXT: dict[str, Any] = {
    "stackName": "AstroDagDeployTest",
    "sourceBuckets": ["ci-artifacts-a", "ci-artifacts-b"],
    "notifyEmails": ["data-oncall@example.com"],
    "astroDeployments": {
        "analytics/prod": {"deploymentId": "dep-analytics-prod", "workspaceId": "ws-analytics"},
        "*/*": {"deploymentId": "dep-{deployment}"},
    },
    "astroTokenSecretArn": None,
    "powertoolsVersion": "3.37.0",
    "executionTimeoutMinutes": 45,
    "deployTimeoutSeconds": 720,
    "logRetentionDays": 14,
    "noncurrentVersionDays": 60,
    "lockMaxWaitMinutes": 25,
    "emailNotifications": True,
    "alarms": {"enabled": True, "failedExecutions": 2, "timedOutExecutions": 1, "api5xx": 3, "failedDeploys": True},
}


def render(value: Any) -> Any:
    """Template values with tokens written as placeholders: Fn::GetAtt -> <Id.Attr>, Ref -> <Id>, Fn::Join joined."""
    if isinstance(value, list):
        return [render(item) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return f"<{value['Ref']}>"
    if set(value) == {"Fn::GetAtt"}:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    return {key: render(item) for key, item in value.items()}


@dataclass
class SynthesizedStack:
    """Test modules reach these helpers through the `synthesized` fixture (`conftest` is not importable by name)."""

    app: App
    stack: AstroDagDeployStack
    directory: Path
    template: dict
    context: dict[str, Any]

    render = staticmethod(render)

    @property
    def resources(self) -> dict[str, dict]:
        return self.template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def only(self, resource_type: str) -> tuple[str, dict]:
        (found,) = self.of_type(resource_type).items()
        return found

    def output_ref(self, output: str) -> str:
        """The logical ID an output refers to (how the local mode finds the bucket, topic, secret, machine)."""
        return self.template["Outputs"][output]["Value"]["Ref"]

    def output_value(self, output: str) -> Any:
        return render(self.template["Outputs"][output]["Value"])

    def function_id(self, handler: str) -> str:
        """A function by its Handler (zip) or image command (deploy)."""
        (found,) = [
            key
            for key, function in self.of_type("AWS::Lambda::Function").items()
            if handler == function["Properties"].get("Handler")
            or [handler] == function["Properties"].get("ImageConfig", {}).get("Command")
        ]
        return found

    def properties(self, logical_id: str) -> dict:
        return self.resources[logical_id]["Properties"]

    def role_id(self, function_id: str) -> str:
        return self.properties(function_id)["Role"]["Fn::GetAtt"][0]

    def statements(self, role_id: str, *, rendered: bool = True) -> list[dict]:
        """Every statement of the policies attached to the role, rendered or as the template holds them."""
        return [
            render(statement) if rendered else statement
            for policy in self.of_type("AWS::IAM::Policy").values()
            if {"Ref": role_id} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def assets_manifest(self) -> dict:
        return json.loads((self.directory / f"{self.stack.artifact_id}.assets.json").read_text())


def synthesize(directory: Path, **overrides: Any) -> SynthesizedStack:
    context = {**TEST_CONTEXT, **overrides}
    app, stack = build_stack(context, outdir=str(directory))
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template
    return SynthesizedStack(
        app=app, stack=stack, directory=Path(assembly.directory), template=template, context=context
    )


@pytest.fixture(scope="session")
def synthesize_with(tmp_path_factory) -> Callable[..., SynthesizedStack]:
    """Synthesize with other context values; each call costs seconds."""

    def synthesize_overrides(**overrides: Any) -> SynthesizedStack:
        return synthesize(tmp_path_factory.mktemp("cdk.out"), **overrides)

    return synthesize_overrides


@pytest.fixture(scope="session")
def synthesized(synthesize_with) -> SynthesizedStack:
    return synthesize_with()


@pytest.fixture(scope="session")
def dag_bucket_id(synthesized) -> str:
    return synthesized.output_ref("DagBucketName")


@pytest.fixture(scope="session")
def without_alarms(synthesize_with) -> SynthesizedStack:
    """Every alarm off and no email subscribed: what a test or sandbox stack may want."""
    return synthesize_with(alarms={"enabled": False}, emailNotifications=False)
