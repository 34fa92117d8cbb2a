"""cdk-nag suppressions. Each names the exact findings it excuses, with the reason they cannot be avoided."""

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
