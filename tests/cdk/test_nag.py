"""cdk-nag's AwsSolutions pack: nothing left unsuppressed, and every suppression explains itself."""

import pytest
from aws_cdk.assertions import Annotations, Match

# A new kind of suppression is a decision to review: it has to be added here.
SUPPRESSED_RULES = {
    "AwsSolutions-IAM4",  # the API Gateway account's CloudWatch role
    "AwsSolutions-IAM5",  # key patterns under prefixes, Lambda versions, X-Ray, log delivery, the machine's executions
    "AwsSolutions-L1",  # python3.12 by contract
    "AwsSolutions-SMG4",  # the Astro token cannot be rotated by Secrets Manager
    "AwsSolutions-COG4",  # IAM authorization instead of Cognito
    "AwsSolutions-APIG3",  # no WAF in front of an IAM-only API
    "AwsSolutions-SQS3",  # the recovery dead-letter queue is itself a DLQ (of a function and a rule)
}


@pytest.fixture(scope="module")
def suppressions(synthesized) -> list[dict]:
    return [
        suppression
        for resource in synthesized.template.to_json()["Resources"].values()
        for suppression in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]


# The test stack grants source keys; the other one, an existing secret's customer-managed key.
@pytest.mark.parametrize("stack", ["synthesized", "with_customer_managed_secret"])
def test_no_unsuppressed_findings(request, stack):
    annotations = Annotations.from_stack(request.getfixturevalue(stack).stack)
    findings = Match.string_like_regexp("AwsSolutions-.*")
    errors = annotations.find_error("*", findings)
    assert errors == [], [error.entry.data for error in errors]
    warnings = annotations.find_warning("*", findings)
    assert warnings == [], [warning.entry.data for warning in warnings]


def test_only_the_reviewed_rules_are_suppressed(suppressions):
    assert {suppression["id"] for suppression in suppressions} == SUPPRESSED_RULES


def test_every_suppression_gives_a_specific_reason(suppressions):
    for suppression in suppressions:
        assert len(suppression["reason"]) >= 60, suppression
    reasons_by_rule: dict[str, set[str]] = {}
    for suppression in suppressions:
        reasons_by_rule.setdefault(suppression["reason"], set()).add(suppression["id"])
    # One reason is not recycled to excuse different rules.
    assert all(len(rules) == 1 for rules in reasons_by_rule.values()), reasons_by_rule


def test_wildcard_suppressions_name_their_findings(suppressions):
    for suppression in suppressions:
        if suppression["id"] in ("AwsSolutions-IAM4", "AwsSolutions-IAM5"):
            assert suppression.get("applies_to"), suppression
            if "Resource::*" in suppression["applies_to"]:
                assert suppression["applies_to"] == ["Resource::*"]
                assert "no resource-level permissions" in suppression["reason"]
