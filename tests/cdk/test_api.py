"""POST /deployments: IAM-authorized, validated against the generated model, starting the STANDARD machine.
GET /deployments/{executionName}: IAM-authorized, proxied to the status function.

The mapping templates are rendered by airspeed (a Velocity implementation) with the $input, $util and $context
objects API Gateway provides.
"""

import json
import re
from typing import Any
from unittest.mock import patch

import airspeed
import pytest
from airspeed.operators import LocalNamespace
from airspeed.operators import __additional_methods__ as velocity_methods
from aws_cdk.assertions import Capture, Match
from hypothesis import given, settings
from hypothesis import strategies as st

from cdk.api import REFUSED_TEMPLATE, STARTED_TEMPLATE, UNAVAILABLE_TEMPLATE
from functions.shared.execution_names import (
    COMMIT_LENGTH,
    MAX_LENGTH,
    REPO_LENGTH,
    execution_name,
    execution_name_problem,
)
from functions.shared.models import api_json_schema

JSON = "application/json"
STATUS_HANDLER = "functions.status.app.handler"
REQUEST_ID = "5f0c2a7e-9b1d-4c3e-8a6f-0d2b4e6a8c1f"  # $context.requestId is a UUID (36 characters)
DOMAIN_NAME = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
STAGE = "prod"
# What $util.escapeJavaScript (Apache Commons Lang 2 StringEscapeUtils.escapeJavaScript) does to a character.
_JS_ESCAPES = {
    "'": "\\'",
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\n": "\\n",
    "\t": "\\t",
    "\f": "\\f",
    "\r": "\\r",
}
# Character classes of ASCII letters, digits, _ and -, an escaped backslash, a quote: Java and Python read these
# regexes alike. A replacement without $ or \ is literal text in both.
_PORTABLE_REGEX = re.compile(r"(?:\[\^?[A-Za-z0-9_-]+\]|\\\\|')+")


def escape_javascript(text: str) -> str:
    # Java strings are UTF-16: a character beyond the BMP is escaped as its two surrogates.
    units = text.encode("utf-16-be")
    return "".join(
        _JS_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if ord(char) < 32 or ord(char) > 0x7F else char)
        for char in (chr(int.from_bytes(units[i : i + 2], "big")) for i in range(0, len(units), 2))
    )


class ApiGatewayInput:
    """$input: the request's body, or the integration's answer."""

    def __init__(self, body: dict):
        self._body = body

    def path(self, path: str) -> Any:
        assert re.fullmatch(r"\$\.\w+", path), f"unsupported JSONPath {path!r}"
        return self._body.get(path[2:])

    def json(self, path: str) -> str:
        assert path == "$", f"unsupported JSONPath {path!r}"
        return json.dumps(self._body)


class ApiGatewayUtil:
    """$util."""

    def escapeJavaScript(self, text: str | None) -> str | None:
        # Commons Lang answers null with null: a quiet reference ($!) then renders "".
        return None if text is None else escape_javascript(text)


def _replace_all(text: str, regex: str, replacement: str) -> str:
    assert _PORTABLE_REGEX.fullmatch(regex) and not re.search(r"[$\\]", replacement), (regex, replacement)
    return re.sub(regex, replacement, text)


def _substring(text: str, begin: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    # Java throws (and API Gateway answers 500) where Python would quietly cut.
    assert 0 <= begin <= end <= len(text), f"substring({begin}, {end}) of {len(text)} characters"
    return text[begin:end]


# java.lang.String methods the templates call, as Java has them: airspeed has no lastIndexOf, and its substring and
# replaceAll are Python's slice and re.sub, which accept what Java refuses or reads otherwise.
JAVA_STRING_METHODS = {"lastIndexOf": str.rfind, "substring": _substring, "replaceAll": _replace_all}


def render(template: str, body: dict, **context: Any) -> tuple[str, dict]:
    """The template rendered for this body, and its variables: what it #set, and $context, which #set may change."""
    api_gateway = {
        "input": ApiGatewayInput(body),
        "util": ApiGatewayUtil(),
        "context": {"requestId": REQUEST_ID, "domainName": DOMAIN_NAME, "stage": STAGE, **context},
    }
    # The template's #set variables land here, in front of what API Gateway provides (airspeed's own scoping).
    variables = LocalNamespace(api_gateway)
    with patch.dict(velocity_methods[str], JAVA_STRING_METHODS):
        return airspeed.Template(template).merge(variables), variables


def without_nulls(value):
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


@pytest.fixture(scope="module")
def deployments_id(synthesized) -> str:
    return synthesized.only("AWS::ApiGateway::Resource", {"PathPart": "deployments"})[0]


@pytest.fixture(scope="module")
def validator_id(synthesized) -> str:
    synthesized.template.resource_count_is("AWS::ApiGateway::RequestValidator", 1)
    return synthesized.only("AWS::ApiGateway::RequestValidator")[0]


@pytest.fixture(scope="module")
def request_template(synthesized) -> str:
    """The POST integration's request template, the state machine's ARN as a placeholder."""
    _, method = synthesized.only("AWS::ApiGateway::Method", {"HttpMethod": "POST"})
    return synthesized.render(method["Properties"]["Integration"]["RequestTemplates"][JSON])


def start_execution(request_template: str, body: dict) -> dict:
    """The StartExecution request API Gateway sends for this body."""
    rendered, variables = render(request_template, body)
    request = json.loads(rendered)
    assert variables["name"] == request["name"]
    return request


def test_post_deployments_requires_iam_authorization(synthesized, deployments_id):
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "POST", "AuthorizationType": "AWS_IAM", "ResourceId": {"Ref": deployments_id}},
    )


def test_the_body_is_validated_against_the_schema_generated_from_the_request_model(synthesized, validator_id):
    model = Capture()
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": "POST", "RequestValidatorId": {"Ref": validator_id}, "RequestModels": {JSON: {"Ref": model}}},
    )
    synthesized.has(validator_id, "AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True})
    # A template cannot carry JSON null: CDK leaves out the `"default": null` annotations, nothing else.
    synthesized.has(
        model.as_string(),
        "AWS::ApiGateway::Model",
        {"ContentType": JSON, "Schema": Match.exact(without_nulls(api_json_schema()))},
    )


def test_the_integration_starts_an_execution_with_a_role_allowed_only_that(synthesized):
    role = Capture()
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "Integration": {
                "Type": "AWS",
                "IntegrationHttpMethod": "POST",
                "Uri": {"Fn::Join": ["", Match.array_with([":states:action/StartExecution"])]},
                # Any other content type is refused (415) rather than passed through unvalidated.
                "PassthroughBehavior": "NEVER",
                "Credentials": {"Fn::GetAtt": [role, "Arn"]},
            },
        },
    )
    role_id = role.as_string()
    synthesized.has(
        role_id,
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [Match.object_like({"Principal": {"Service": "apigateway.amazonaws.com"}})]
            },
            "ManagedPolicyArns": Match.absent(),
            "Policies": Match.absent(),
        },
    )
    machine = synthesized.output_ref("StateMachineArn")
    assert synthesized.statements(role_id) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": f"<{machine}>"}
    ]


def test_the_request_becomes_start_execution_input_unchanged_even_with_quotes(synthesized, request_template):
    body = {
        "astroWorkspace": "analytics",
        "astroDeployment": "prod",
        "repo": "o'brien-dags",
        "body": {"dags": [{"dag_id": "it's_a \"dag\"", "dag_file": "s3://b/dir/caf\u00e9\\x.py\nnext \U0001f600"}]},
    }
    request = start_execution(request_template, body)
    assert request == {
        "stateMachineArn": f"<{synthesized.output_ref('StateMachineArn')}>",
        "name": execution_name("o'brien-dags", None, REQUEST_ID),
        "input": json.dumps(body),
    }
    assert json.loads(request["input"]) == body


def test_the_execution_name_is_cut_at_the_shared_lengths_and_fits_step_functions(request_template):
    repo, commit = "a" * 20 + "." + "b" * 43, "0123456789abcdef0123456789abcdef01234567"
    body = {"astroWorkspace": "analytics", "astroDeployment": "prod", "repo": repo, "commit": commit}
    name = start_execution(request_template, body)["name"]
    assert name == f"{'a' * 20}-{'b' * (REPO_LENGTH - 21)}-{commit[:COMMIT_LENGTH]}-{REQUEST_ID}"
    assert execution_name_problem(name) is None
    # $context.requestId is a UUID: it makes the name unique and finds the request in the access logs.
    assert REPO_LENGTH + 1 + COMMIT_LENGTH + 1 + len(REQUEST_ID) <= MAX_LENGTH


# Request fields naming an execution: odd characters, the longest repo and commit, commits absent, null, empty, or
# with nothing left once sanitized.
NAMED_REQUESTS = [
    {"repo": "dags"},
    {"repo": "team.dags_v2-main", "commit": "0123456789abcdef0123456789abcdef01234567"},
    {"repo": "o'brien/\"dags\" @v2 caf\u00e9!", "commit": "ABCdef12"},
    {"repo": "a" * 20 + "." + "b" * 43, "commit": "12-34_ab.cd:ef9876"},
    {"repo": "repo", "commit": None},
    {"repo": "repo", "commit": ""},
    {"repo": "repo", "commit": "--__--"},
]


def assert_named_by_the_shared_rule(request_template: str, fields: dict) -> None:
    body = {"astroWorkspace": "analytics", "astroDeployment": "prod", "body": {"dags": []}, **fields}
    request = start_execution(request_template, body)
    expected = execution_name(fields["repo"], fields.get("commit"), REQUEST_ID)
    assert request["name"] == expected
    assert len(expected) <= MAX_LENGTH
    assert json.loads(request["input"]) == body


@pytest.mark.parametrize("fields", NAMED_REQUESTS)
def test_the_execution_name_is_the_shared_rules_with_the_request_id(request_template, fields):
    assert_named_by_the_shared_rule(request_template, fields)


_SCHEMA = api_json_schema()["properties"]
# Every repo and commit the request model lets through to the template.
VALID_FIELDS = st.fixed_dictionaries(
    {"repo": st.from_regex(_SCHEMA["repo"]["pattern"], fullmatch=True)},
    optional={
        "commit": st.none() | st.from_regex(_SCHEMA["commit"]["anyOf"][0]["pattern"], fullmatch=True),
    },
)


# No deadline: the first example parses the template, and the machine's cores are shared.
@settings(deadline=None)
@given(fields=VALID_FIELDS)
def test_every_valid_request_is_named_by_the_shared_rule(request_template, fields):
    assert_named_by_the_shared_rule(request_template, fields)


def test_the_202_answer_gives_the_execution_its_name_and_status_url(request_template):
    body = {"astroWorkspace": "analytics", "astroDeployment": "prod", "repo": "team.dags", "commit": "0a1b2c3d4e5f"}
    name = start_execution(request_template, body)["name"]
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:AstroDagDeploy-Pipeline:{name}"
    answer, _ = render(STARTED_TEMPLATE, {"executionArn": arn, "startDate": 1767225600.0})
    assert json.loads(answer) == {
        "executionArn": arn,
        "name": name,
        "statusUrl": f"https://{DOMAIN_NAME}/{STAGE}/deployments/{name}",
    }


def test_responses_map_start_execution_results(synthesized):
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "POST",
            "Integration": {
                "IntegrationResponses": [
                    {"StatusCode": "202", "SelectionPattern": Match.absent(), "ResponseTemplates": {JSON: STARTED_TEMPLATE}},
                    {"StatusCode": "400", "SelectionPattern": "4\\d{2}", "ResponseTemplates": {JSON: REFUSED_TEMPLATE}},
                    {
                        "StatusCode": "502",
                        "SelectionPattern": "5\\d{2}",
                        "ResponseTemplates": {JSON: UNAVAILABLE_TEMPLATE},
                    },
                ]
            },
            "MethodResponses": [{"StatusCode": code} for code in ("202", "400", "409", "502")],
        },
    )


def test_an_execution_that_already_exists_is_answered_409_with_its_message():
    message = "Execution Already Exists: 'arn:aws:states:...:execution:Machine:x'"
    error = {"__type": "com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists", "message": message}
    answer, variables = render(REFUSED_TEMPLATE, error, responseOverride={})
    assert json.loads(answer) == {"error": "ExecutionAlreadyExists", "message": message}
    assert variables["context"]["responseOverride"] == {"status": 409}


def test_other_refusals_keep_their_400_and_name_their_error():
    error = {"__type": "com.amazonaws.swf.service.v2.model#InvalidName", "message": 'bad "name"'}
    answer, variables = render(REFUSED_TEMPLATE, error, responseOverride={})
    assert json.loads(answer) == {"error": "InvalidName", "message": 'bad "name"'}
    assert variables["context"]["responseOverride"] == {}


def test_step_functions_unavailable_is_answered_even_without_a_message():
    answer, _ = render(UNAVAILABLE_TEMPLATE, {})
    assert json.loads(answer) == {"error": "StepFunctionsUnavailable", "message": ""}


def test_an_invalid_body_is_answered_with_the_validation_errors(synthesized):
    synthesized.template.resource_count_is("AWS::ApiGateway::GatewayResponse", 1)
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "BAD_REQUEST_BODY",
            "StatusCode": "400",
            "ResponseTemplates": {JSON: Match.string_like_regexp(r"\$context\.error\.validationErrorString")},
        },
    )


def test_the_stage_is_throttled_traced_and_logs_json(synthesized):
    rate, burst, log_format, destination = Capture(), Capture(), Capture(), Capture()
    synthesized.template.resource_count_is("AWS::ApiGateway::Stage", 1)
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": [
                {
                    "ThrottlingRateLimit": rate,
                    "ThrottlingBurstLimit": burst,
                    "LoggingLevel": "INFO",
                    "DataTraceEnabled": False,
                }
            ],
            "TracingEnabled": True,
            "AccessLogSetting": {"Format": log_format, "DestinationArn": destination},
        },
    )
    assert rate.as_number() > 0 and burst.as_number() > 0
    assert {"requestId", "userArn", "status", "error"} <= set(json.loads(log_format.as_string()))
    (log_group_id,) = re.findall(r"log-group:<(\w+)>", synthesized.render(destination.as_object()))
    assert log_group_id in synthesized.template.find_resources("AWS::Logs::LogGroup")


@pytest.fixture(scope="module")
def status_resource_id(synthesized, deployments_id) -> str:
    return synthesized.only(
        "AWS::ApiGateway::Resource", {"PathPart": "{executionName}", "ParentId": {"Ref": deployments_id}}
    )[0]


def test_get_deployment_status_requires_iam_authorization_and_a_validated_execution_name(
    synthesized, status_resource_id, validator_id
):
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {
            "HttpMethod": "GET",
            "AuthorizationType": "AWS_IAM",
            "ResourceId": {"Ref": status_resource_id},
            "RequestParameters": Match.exact({"method.request.path.executionName": True}),
            "RequestValidatorId": {"Ref": validator_id},
            "MethodResponses": [{"StatusCode": code} for code in ("200", "400", "404")],
        },
    )
    synthesized.has(validator_id, "AWS::ApiGateway::RequestValidator", {"ValidateRequestParameters": True})


def test_get_deployment_status_and_targets_are_proxied_to_the_status_function(synthesized):
    function_id = synthesized.function_id(STATUS_HANDLER)
    methods = synthesized.template.find_resources(
        "AWS::ApiGateway::Method", {"Properties": {"HttpMethod": "GET", "Integration": {"Type": "AWS_PROXY"}}}
    )
    assert len(methods) == 2
    for method in methods.values():
        assert synthesized.render(method["Properties"]["Integration"]["Uri"]) == (
            "arn:<AWS::Partition>:apigateway:<AWS::Region>:lambda:path/2015-03-31/functions/"
            f"<{function_id}.Arn>/invocations"
        )
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
    (api,) = {method["Properties"]["RestApiId"]["Ref"] for method in methods.values()}
    # Only these methods of the deployed stage may invoke it: no permission for the console's test invocations.
    permissions = synthesized.template.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"FunctionName": {"Fn::GetAtt": [function_id, "Arn"]}}}
    )
    stage_id, _ = synthesized.only("AWS::ApiGateway::Stage")
    assert sorted(synthesized.render(permission["Properties"])["SourceArn"] for permission in permissions.values()) == [
        f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{api}>/<{stage_id}>/GET/{path}"
        for path in ("deployments/*", "targets/*/*")
    ]
    for permission in permissions.values():
        rendered = synthesized.render(permission["Properties"])
        assert (rendered["Action"], rendered["Principal"]) == ("lambda:InvokeFunction", "apigateway.amazonaws.com")


def test_targets_take_the_workspace_and_deployment_in_the_path(synthesized):
    targets = synthesized.output_value("TargetsUrl")
    assert targets == synthesized.output_value("DeploymentsUrl").removesuffix("/deployments") + (
        "/targets/{workspace}/{deployment}"
    )
    (method,) = synthesized.template.find_resources(
        "AWS::ApiGateway::Method",
        {"Properties": {"RequestParameters": {"method.request.path.workspace": True,
                                              "method.request.path.deployment": True}}},
    ).values()
    assert method["Properties"]["HttpMethod"] == "GET" and "RequestValidatorId" in method["Properties"]


def test_the_deployments_url_and_the_status_url_pattern_are_outputs(synthesized):
    deployments_url = synthesized.output_value("DeploymentsUrl")
    assert deployments_url.startswith("https://") and deployments_url.endswith("/deployments")
    assert synthesized.output_value("DeploymentStatusUrl") == f"{deployments_url}/{{executionName}}"
