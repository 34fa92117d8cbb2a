"""The Astro targets store: every astroDeployments entry an SSM parameter, no environment variable over Lambda's
4 KB, and only the functions that resolve targets may read them."""

import json

import pytest

from cdk.config import ADVANCED_PARAMETER_BYTES, MAX_ASTRO_DEPLOYMENTS, SettingsError, StackSettings
from functions.shared.astro_targets import parameter_name

PATH = "/astro-dag-deploy/AstroDagDeployTest/astro-deployments/"
# Lambda: "The total size of all environment variables doesn't exceed 4 KB" (keys and values).
ENVIRONMENT_LIMIT_BYTES = 4096
MANY = 300


def many_deployments() -> dict:
    return {f"team{number:03}/prod": {"deploymentId": f"clx{number:03}astro", "workspaceId": f"ws-{number:03}"}
            for number in range(MANY)}


@pytest.fixture(scope="module")
def with_many_deployments(synthesize_with):
    return synthesize_with(astroDeployments=many_deployments())


def stored_entries(synthesized) -> dict[str, dict]:
    parameters = synthesized.resources("AWS::SSM::Parameter")
    return {properties["Properties"]["Name"]: properties["Properties"] for properties in parameters.values()}


def test_every_entry_is_its_own_parameter_holding_exactly_its_configuration(synthesized):
    stored = stored_entries(synthesized)
    expected = {parameter_name(PATH, key): entry for key, entry in synthesized.context["astroDeployments"].items()}
    assert {name: json.loads(parameter["Value"]) for name, parameter in stored.items()} == expected
    assert PATH + "_any/_any" in stored  # SSM names cannot hold "*"
    assert {parameter["Type"] for parameter in stored.values()} == {"String"}
    assert {parameter["Tier"] for parameter in stored.values()} == {"Standard"}


def test_three_hundred_deployments_synthesize_and_no_environment_reaches_lambdas_4_kb(with_many_deployments):
    stored = stored_entries(with_many_deployments)
    assert len(stored) == MANY
    assert json.loads(stored[parameter_name(PATH, "team299/prod")]["Value"]) == {
        "deploymentId": "clx299astro", "workspaceId": "ws-299"
    }
    functions = with_many_deployments.resources("AWS::Lambda::Function")
    assert len(functions) >= 10
    for logical_id, function in functions.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        # Unresolved references (Ref, Fn::GetAtt) count as their JSON, longer than the names they become.
        size = sum(len(name) + len(json.dumps(value)) for name, value in variables.items())
        assert size < ENVIRONMENT_LIMIT_BYTES // 4, (logical_id, size)


def test_parameters_are_created_a_few_at_a_time(with_many_deployments):
    # SSM throttles PutParameter: CloudFormation would otherwise create all 300 at once.
    parameters = with_many_deployments.resources("AWS::SSM::Parameter")
    independent = [logical_id for logical_id, parameter in parameters.items() if not parameter.get("DependsOn")]
    assert len(independent) == 5
    assert all(len(parameter.get("DependsOn", [])) <= 1 for parameter in parameters.values())


def test_an_entry_over_4_kb_is_an_advanced_parameter(synthesize_with):
    large = {"deploymentId": "clx", "dagBundles": "per-repo",
             "bundleNames": {f"repo_{number:04}": f"bundle-{number:04}" for number in range(170)}}
    assert 4096 < len(json.dumps(large, separators=(",", ":"))) < ADVANCED_PARAMETER_BYTES
    stored = stored_entries(synthesize_with(astroDeployments={"big/prod": large, "small/prod": {"deploymentId": "d"}}))
    assert stored[PATH + "big/prod"]["Tier"] == "Advanced"
    assert stored[PATH + "small/prod"]["Tier"] == "Standard"


def test_an_entry_no_parameter_holds_and_too_many_entries_fail_synth_clearly():
    huge = {"deploymentId": "clx", "dagBundles": "per-repo",
            "bundleNames": {f"repo_{number:04}": f"bundle-{number:04}" for number in range(400)}}
    with pytest.raises(SettingsError) as raised:
        StackSettings.from_context({"sourceBuckets": ["b-1"], "astroDeployments": {"big/prod": huge}})
    assert f"'big/prod' is {len(json.dumps(huge, separators=(',', ':')))} bytes as JSON" in str(raised.value)
    too_many = {f"ws/d{number}": {"deploymentId": "x"} for number in range(MAX_ASTRO_DEPLOYMENTS + 1)}
    with pytest.raises(SettingsError, match=f"{MAX_ASTRO_DEPLOYMENTS + 1} entries, at most {MAX_ASTRO_DEPLOYMENTS}"):
        StackSettings.from_context({"sourceBuckets": ["b-1"], "astroDeployments": too_many})
