"""The stack, synthesized once per session (jsii takes seconds), and helpers to read its template."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aws_cdk import App
from aws_cdk.assertions import Capture, Match, Template

from cdk.app import build_stack
from cdk.stack import AstroDagDeployStack
from functions.shared.notification import NOTIFIED_KEY_ATTRIBUTE
from local_mode.template import PlaceholderResolver

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
    # Two Regions, one of them a multi-Region key of another account (cross-account source buckets).
    "sourceKmsKeyArns": [
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:eu-central-1:210987654321:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ],
    "powertoolsVersion": "3.37.0",
    "executionTimeoutMinutes": 410,
    "deployTimeoutSeconds": 720,
    "logRetentionDays": 14,
    "noncurrentVersionDays": 60,
    "lockMaxWaitMinutes": 25,
    "emailNotifications": True,
    "alarms": {"enabled": True, "failedExecutions": 2, "timedOutExecutions": 1, "api5xx": 3, "failedDeploys": True},
}
EXISTING_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:astro/token-AbC123"
EXISTING_SECRET_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def render(value: Any) -> Any:
    """Template values with references as placeholders (Ref -> <Id>, Fn::GetAtt -> <Id.Attr>) and Fn::Join joined."""
    return PlaceholderResolver().resolve(value)


@dataclass
class SynthesizedStack:
    """Test modules reach these helpers through the `synthesized` fixture (`conftest` is not importable by name).

    `template` is the CDK's assertions view of the stack's template; the helpers find resources through it.
    """

    app: App
    stack: AstroDagDeployStack
    directory: Path
    template: Template
    context: dict[str, Any]

    render = staticmethod(render)

    def resources(self, resource_type: str, properties: dict | None = None) -> dict[str, dict]:
        """Resources of this type whose properties match (Match.object_like, as has_resource_properties)."""
        pattern = {"Properties": properties} if properties is not None else None
        return self.template.find_resources(resource_type, pattern)

    def only(self, resource_type: str, properties: dict | None = None) -> tuple[str, dict]:
        """The one resource of this type whose properties match, and its logical ID."""
        (found,) = self.resources(resource_type, properties).items()
        return found

    def has(self, logical_id: str, resource_type: str, properties: dict) -> None:
        """has_resource_properties for this very resource (and Captures filled from it alone)."""
        resource = self.resources(resource_type)[logical_id]
        Template.from_json({"Resources": {logical_id: resource}}).has_resource_properties(resource_type, properties)

    def output_ref(self, output: str) -> str:
        """The logical ID an output refers to (how the local mode finds the bucket, topic, secret, machine)."""
        ref = Capture()
        self.template.has_output(output, {"Value": {"Ref": ref}})
        return ref.as_string()

    def output_value(self, output: str) -> Any:
        return render(self.template.find_outputs(output)[output]["Value"])

    def function_id(self, handler: str) -> str:
        """A function by its Handler (zip) or image command (deploy)."""
        zip_functions = self.resources("AWS::Lambda::Function", {"Handler": handler})
        image_functions = self.resources("AWS::Lambda::Function", {"ImageConfig": {"Command": [handler]}})
        (found,) = [*zip_functions, *image_functions]
        return found

    def role_id(self, function_id: str) -> str:
        role = Capture()
        self.has(function_id, "AWS::Lambda::Function", {"Role": {"Fn::GetAtt": [role, "Arn"]}})
        return role.as_string()

    def statements(self, role_id: str, *, rendered: bool = True) -> list[dict]:
        """Every statement of the policies attached to the role, rendered or as the template holds them."""
        policies = self.resources("AWS::IAM::Policy", {"Roles": Match.array_with([{"Ref": role_id}])})
        return [
            render(statement) if rendered else statement
            for policy in policies.values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def assets_manifest(self) -> dict:
        return json.loads((self.directory / f"{self.stack.artifact_id}.assets.json").read_text())


def synthesize(directory: Path, **overrides: Any) -> SynthesizedStack:
    context = {**TEST_CONTEXT, **overrides}
    app, stack = build_stack(context, outdir=str(directory))
    assembly = app.synth()
    return SynthesizedStack(
        app=app, stack=stack, directory=Path(assembly.directory), template=Template.from_stack(stack), context=context
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
def with_customer_managed_secret(synthesize_with) -> SynthesizedStack:
    """An existing token secret encrypted with a customer-managed key, and no source keys."""
    return synthesize_with(
        sourceKmsKeyArns=[],
        astroTokenSecretArn=EXISTING_SECRET_ARN,
        astroTokenSecretKmsKeyArn=EXISTING_SECRET_KEY_ARN,
    )


@pytest.fixture(scope="session")
def dag_bucket_id(synthesized) -> str:
    return synthesized.output_ref("DagBucketName")


@pytest.fixture(scope="session")
def notified_table_id(synthesized) -> str:
    """Notify's record of the executions it notified: the table keyed as powertools' idempotency writes."""
    [table_id] = synthesized.resources("AWS::DynamoDB::Table", {"KeySchema": [{"AttributeName": NOTIFIED_KEY_ATTRIBUTE,
                                                                               "KeyType": "HASH"}]})
    return table_id


@pytest.fixture(scope="session")
def without_alarms(synthesize_with) -> SynthesizedStack:
    """Every alarm off and no email subscribed: what a test or sandbox stack may want."""
    return synthesize_with(alarms={"enabled": False}, emailNotifications=False)
