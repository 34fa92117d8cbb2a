"""cdk-nag suppressions. Each names the exact findings it excuses, with the reason they cannot be avoided."""

import json
from typing import Any

from aws_cdk import CfnElement, Stack
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct


def suppress(construct: IConstruct, rule: str, reason: str, findings: list[str] | None = None) -> None:
    """Suppress `rule` on the construct and its children, only for `findings` when given."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=f"AwsSolutions-{rule}", reason=reason, applies_to=findings)],
        apply_to_children=True,
    )


def attribute_finding(element: CfnElement, suffix: str = "", attribute: str = "Arn") -> str:
    """How cdk-nag names a resource written as `Fn::GetAtt [element, attribute]` followed by `suffix`."""
    return f"Resource::<{Stack.of(element).get_logical_id(element)}.{attribute}>{suffix}"


def resource_finding(scope: IConstruct, resource: str) -> str:
    """How cdk-nag names a policy statement's resource in its findings, whatever intrinsic functions it holds."""
    return f"Resource::{_flattened(Stack.of(scope).resolve(resource))}"


def _flattened(value: Any) -> str:
    """cdk-nag's flattenCfnReference: references become <Id> and <Id.Attribute>, other functions their JSON."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if "Fn::Join" in value:
        delimiter, items = value["Fn::Join"]
        return delimiter.join(_flattened(item) for item in items)
    if "Fn::Sub" in value:
        return _flattened(value["Fn::Sub"])
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return f"<{_flattened(resource)}.{_flattened(attribute)}>"
    if "Fn::ImportValue" in value:
        return _flattened(value["Fn::ImportValue"])
    if "Ref" in value:
        return f"<{_flattened(value['Ref'])}>"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
