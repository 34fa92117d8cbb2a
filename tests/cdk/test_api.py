"""POST /deployments: IAM-authorized, validated against the generated model, starting the STANDARD machine."""

import json
import re

import pytest

from shared.models import api_json_schema

JSON = "application/json"
EXECUTION_NAME_LIMIT = 80  # Step Functions' limit
REQUEST_ID_LENGTH = 36  # $context.requestId is a UUID
# What $util.escapeJavaScript (Apache Commons Lang 2 StringEscapeUtils.escapeJavaScript) does to a string.
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
# $util.escapeJavaScript(...) followed by .replaceAll("<Java regex>", "<replacement>").
_ESCAPED_EXPRESSION = re.compile(
    r'\$!?util\.escapeJavaScript\((?P<argument>.+?)\)\.replaceAll\("(?P<regex>.+?)", "(?P<replacement>.*?)"\)'
)


def without_nulls(value):
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def escape_javascript(text: str) -> str:
    return "".join(
        _JS_ESCAPES.get(char) or (f"\\u{ord(char):04X}" if ord(char) < 32 or ord(char) > 0x7F else char)
        for char in text
    )


def fill_escaped(template: str, values: dict[str, str]) -> str:
    """Replace each escapeJavaScript(...).replaceAll(...) expression by what API Gateway makes of values[argument]."""

    def evaluate(match: re.Match) -> str:
        escaped = escape_javascript(values[match["argument"]])
        # The regex is a Java regex inside a VTL string literal, which keeps backslashes as they are.
        return re.sub(match["regex"], match["replacement"], escaped)

    return _ESCAPED_EXPRESSION.sub(evaluate, template)


@pytest.fixture(scope="module")
def method(synthesized) -> dict:
    (method_id,) = [
        key
        for key, method in synthesized.of_type("AWS::ApiGateway::Method").items()
        if method["Properties"]["HttpMethod"] == "POST"
    ]
    return synthesized.render(synthesized.properties(method_id))


@pytest.fixture(scope="module")
def integration(method) -> dict:
    return method["Integration"]


@pytest.fixture(scope="module")
def request_template(integration) -> str:
    return integration["RequestTemplates"][JSON]


def test_post_deployments_requires_iam_authorization(synthesized, method):
    assert method["AuthorizationType"] == "AWS_IAM"
    resource_id = method["ResourceId"].strip("<>")
    assert synthesized.properties(resource_id)["PathPart"] == "deployments"


def test_the_body_is_validated_against_the_schema_generated_from_the_request_model(synthesized, method):
    validator = synthesized.properties(method["RequestValidatorId"].strip("<>"))
    assert validator["ValidateRequestBody"] is True
    model = synthesized.properties(method["RequestModels"][JSON].strip("<>"))
    assert model["ContentType"] == JSON
    # A template cannot carry JSON null: CDK leaves out the `"default": null` annotations, nothing else.
    assert model["Schema"] == without_nulls(api_json_schema())


def test_the_integration_starts_an_execution_with_a_role_allowed_only_that(synthesized, integration):
    assert integration["Type"] == "AWS"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert integration["Uri"].endswith(":states:action/StartExecution")
    # Any other content type is refused (415) rather than passed through unvalidated.
    assert integration["PassthroughBehavior"] == "NEVER"
    role_id = integration["Credentials"].removeprefix("<").removesuffix(".Arn>")
    role = synthesized.properties(role_id)
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert "ManagedPolicyArns" not in role and "Policies" not in role
    machine = synthesized.output_ref("StateMachineArn")
    assert synthesized.statements(role_id) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": f"<{machine}>"}
    ]


def test_the_request_becomes_start_execution_input_unchanged_even_with_quotes(synthesized, request_template):
    body = {
        "astroWorkspace": "analytics",
        "astroDeployment": "prod",
        "repo": "o'brien-dags",
        "body": {"dags": [{"dag_id": "it's_a \"dag\"", "dag_file": "s3://b/dir/caf\u00e9\\x.py\nnext"}]},
    }
    json_text = "\n".join(line for line in request_template.splitlines() if not line.startswith("#"))
    filled = fill_escaped(json_text, {"$input.json('$')": json.dumps(body)}).replace("$name", "a-name")
    request = json.loads(filled)
    assert request == {
        "stateMachineArn": f"<{synthesized.output_ref('StateMachineArn')}>",
        "name": "a-name",
        "input": json.dumps(body),
    }
    assert json.loads(request["input"]) == body


def test_the_execution_name_is_traceable_unique_and_within_the_limit(request_template):
    directives = request_template.split("\n{", 1)[0]
    # The repo and commit are reduced to characters Step Functions accepts in a name, then cut.
    repo_length = int(re.search(r"#set\(\$repo = \$repo\.substring\(0, (\d+)\)\)", directives)[1])
    commit_length = int(re.search(r"#set\(\$commit = \$commit\.substring\(0, (\d+)\)\)", directives)[1])
    assert '$repo.replaceAll("[^A-Za-z0-9_-]", "-")' in directives
    assert '$commit.replaceAll("[^A-Za-z0-9]", "")' in directives
    assert "$input.path('$.repo')" in directives and "$!input.path('$.commit')" in directives
    # Formal references: "$repo-" would be read as a variable named "repo-".
    names = re.findall(r'#set\(\$name = "([^"]+)"\)', directives)
    assert sorted(names) == ["${repo}-$context.requestId", "${repo}-${commit}-$context.requestId"]
    # $context.requestId is a UUID: it makes the name unique and finds the request in the access logs.
    assert repo_length + 1 + commit_length + 1 + REQUEST_ID_LENGTH <= EXECUTION_NAME_LIMIT
    assert (repo_length, commit_length) == (30, 8)


def test_responses_map_start_execution_results(integration, method):
    responses = {response.get("SelectionPattern"): response for response in integration["IntegrationResponses"]}
    assert {pattern: response["StatusCode"] for pattern, response in responses.items()} == {
        None: "202",
        "4\\d{2}": "400",
        "5\\d{2}": "502",
    }
    assert {response["StatusCode"] for response in method["MethodResponses"]} == {"202", "400", "409", "502"}

    started = responses[None]["ResponseTemplates"][JSON]
    arn = "arn:aws:states:eu-west-1:123456789012:execution:Machine:repo-abc12345-0f6c"
    assert "$input.path('$.executionArn')" in started and "lastIndexOf(':') + 1" in started
    started_body = started.splitlines()[-1].replace("$arn.substring($nameStart)", arn.rsplit(":", 1)[1])
    assert json.loads(started_body.replace("$arn", arn)) == {"executionArn": arn, "name": "repo-abc12345-0f6c"}

    refused = responses["4\\d{2}"]["ResponseTemplates"][JSON]
    assert '#if($error == "ExecutionAlreadyExists")#set($context.responseOverride.status = 409)#end' in refused
    message = "Execution Already Exists: 'arn:aws:states:...:execution:Machine:x'"
    refused_body = fill_escaped(refused.splitlines()[-1], {"$input.path('$.message')": message})
    assert json.loads(refused_body.replace("$error", "ExecutionAlreadyExists")) == {
        "error": "ExecutionAlreadyExists",
        "message": message,
    }


def test_an_invalid_body_is_answered_with_the_validation_errors(synthesized):
    (_, response) = synthesized.only("AWS::ApiGateway::GatewayResponse")
    properties = response["Properties"]
    assert properties["ResponseType"] == "BAD_REQUEST_BODY"
    assert properties["StatusCode"] == "400"
    assert "$context.error.validationErrorString" in properties["ResponseTemplates"][JSON]


def test_the_stage_is_throttled_traced_and_logs_json(synthesized):
    (_, stage) = synthesized.only("AWS::ApiGateway::Stage")
    stage = synthesized.render(stage["Properties"])
    (settings,) = stage["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    assert settings["LoggingLevel"] == "INFO"
    assert settings["DataTraceEnabled"] is False
    assert stage["TracingEnabled"] is True
    access_log = json.loads(stage["AccessLogSetting"]["Format"])
    assert {"requestId", "userArn", "status", "error"} <= set(access_log)
    (log_group_id,) = re.findall(r"log-group:<(\w+)>", stage["AccessLogSetting"]["DestinationArn"])
    assert synthesized.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
