"""POST /deployments: IAM-authorized, validated against the generated model, starting the STANDARD machine.
GET /deployments/{executionName}: IAM-authorized, proxied to the status function."""

import json
import re
from typing import Any

import pytest

from functions.shared.execution_names import COMMIT_LENGTH, MAX_LENGTH, REPO_LENGTH, execution_name
from functions.shared.models import api_json_schema

JSON = "application/json"
STATUS_HANDLER = "functions.status.app.handler"
# $context of a request: requestId is a UUID (36 characters).
CONTEXT = {
    "requestId": "5f0c2a7e-9b1d-4c3e-8a6f-0d2b4e6a8c1f",
    "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
    "stage": "prod",
}
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


class _Input:
    """$input: the request's body, or the integration's answer."""

    def __init__(self, body: dict):
        self._body = body

    def path(self, path: str) -> Any:
        assert re.fullmatch(r"\$\.\w+", path), f"unsupported JSONPath {path!r}"
        return self._body.get(path[2:])

    def json(self, path: str) -> str:
        assert path == "$", f"unsupported JSONPath {path!r}"
        return json.dumps(self._body)


class _Util:
    def escapeJavaScript(self, text: str) -> str:  # noqa: N802 (VTL's name)
        return escape_javascript(text)


# Character classes of ASCII letters, digits, _ and -, an escaped backslash, a quote: Java and Python read these
# regexes alike. A replacement without $ or \ is literal text in both.
_PORTABLE_REGEX = re.compile(r"(?:\[\^?[A-Za-z0-9_-]+\]|\\\\|')+")


def _replace_all(text: str, regex: str, replacement: str) -> str:
    assert _PORTABLE_REGEX.fullmatch(regex) and not re.search(r"[$\\]", replacement), (regex, replacement)
    return re.sub(regex, replacement, text)


def _substring(text: str, begin: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    # Java throws where Python would quietly cut.
    assert 0 <= begin <= end <= len(text), f"substring({begin}, {end}) of {len(text)} characters"
    return text[begin:end]


_STRING_METHODS = {
    "replaceAll": _replace_all,
    "substring": _substring,
    "length": len,
    "lastIndexOf": str.rfind,
}
_OPERATORS = {
    "==": lambda left, right: left == right,
    ">": lambda left, right: _integers(left, right) and left > right,
    "+": lambda left, right: _integers(left, right) and left + right,
}
# Velocity 1.7 identifiers may hold "-": "$repo-" names the variable "repo-".
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_REFERENCE = re.compile(r"\$!?\{?[A-Za-z_]")
_DIRECTIVE = re.compile(r"#(set|if|else|end)")


def _integers(*values: Any) -> bool:
    assert all(type(value) is int for value in values), values
    return True


class Vtl:
    """The subset of VTL the API's templates use, evaluated as API Gateway's Velocity would.

    #set($name = expression), #if(condition) #else #end; "interpolated" and 'literal' strings, integers, references
    ($a, ${a}, $!a) with properties and method calls, and one of == > + between two operands; $input.path('$.key'),
    $input.json('$'), $util.escapeJavaScript, $context.<key>, and the String methods above. Anything else fails the
    test rather than being skipped. Whitespace stays as written (Velocity drops some newlines; JSON ignores them).
    """

    def __init__(self, input_body: dict, context: dict[str, str]):
        self.variables: dict[str, Any] = {"input": _Input(input_body), "util": _Util(), "context": context}

    def render(self, template: str) -> str:
        output: list[str] = []
        open_ifs: list[tuple[bool, bool]] = []  # per #if: (the enclosing block runs, a branch was taken)
        active = True
        for kind, argument in _segments(template):
            if kind == "text" and active:
                output.append(self.interpolate(argument))
            elif kind == "set" and active:
                self._set(argument)
            elif kind == "if":
                taken = active and self._condition(argument)
                open_ifs.append((active, taken))
                active = taken
            elif kind == "else":
                enclosing, taken = open_ifs[-1]
                active = enclosing and not taken
            elif kind == "end":
                active, _ = open_ifs.pop()
        assert not open_ifs, "#if without #end"
        return "".join(output)

    def interpolate(self, text: str) -> str:
        """Text with its references replaced; an unset one stays as written, or is "" when quiet ($!)."""
        output, position = [], 0
        while (start := text.find("$", position)) != -1:
            output.append(text[position:start])
            if not _REFERENCE.match(text, start):
                output.append("$")
                position = start + 1
                continue
            expression = _Expression(self, text, start)
            value, quiet = expression.reference()
            written = text[start : expression.position]
            output.append(("" if quiet else written) if value is None else str(value))
            position = expression.position
        output.append(text[position:])
        return "".join(output)

    def _set(self, argument: str) -> None:
        expression = _Expression(self, argument)
        expression.expect("$")
        name = expression.identifier()
        expression.expect("=")
        value = expression.value()
        expression.expect_end()
        # Velocity versions differ on #set to null: the templates never do it.
        assert value is not None, f"#set({argument}) sets null"
        self.variables[name] = value

    def _condition(self, argument: str) -> bool:
        expression = _Expression(self, argument)
        value = expression.value()
        expression.expect_end()
        assert isinstance(value, bool), f"#if({argument}) is not a comparison"
        return value


def _segments(template: str):
    """("text", text) and (directive, its parenthesized argument) in template order."""
    position = 0
    while position < len(template):
        start = template.find("#", position)
        if start == -1:
            yield "text", template[position:]
            return
        if start > position:
            yield "text", template[position:start]
        directive = _DIRECTIVE.match(template, start)
        assert directive, f"unsupported directive: {template[start : start + 20]!r}"
        position = directive.end()
        if directive[1] in ("set", "if"):
            end = _closing_parenthesis(template, position)
            yield directive[1], template[position + 1 : end]
            position = end + 1
        else:
            yield directive[1], ""


def _closing_parenthesis(text: str, start: int) -> int:
    assert text[start] == "(", text[start : start + 20]
    depth, position = 0, start
    while position < len(text):
        character = text[position]
        if character in "\"'":
            position = text.index(character, position + 1)
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    raise AssertionError(f"unclosed parenthesis: {text[start : start + 40]!r}")


class _Expression:
    def __init__(self, vtl: Vtl, text: str, position: int = 0):
        self.vtl, self.text, self.position = vtl, text, position

    def value(self) -> Any:
        left = self.operand()
        self._skip_spaces()
        for operator, apply in _OPERATORS.items():
            if self._take(operator):
                return apply(left, self.operand())
        return left

    def operand(self) -> Any:
        self._skip_spaces()
        character = self.text[self.position]
        if character == '"':
            return self.vtl.interpolate(self._quoted('"'))
        if character == "'":
            return self._quoted("'")
        if digits := re.match(r"\d+", self.text[self.position :]):
            self.position += len(digits[0])
            return int(digits[0])
        assert _REFERENCE.match(self.text, self.position), f"unsupported operand: {self.text[self.position :]!r}"
        return self.reference()[0]

    def reference(self) -> tuple[Any, bool]:
        """The value of $a, ${a}, $!a, $a.property or $a.method(arguments)..., and whether it is quiet."""
        self.expect("$")
        quiet = self._take("!")
        formal = self._take("{")
        value = self.vtl.variables.get(self.identifier())
        if formal:
            self.expect("}")
            return value, quiet
        while self.text.startswith(".", self.position) and _IDENTIFIER.match(self.text, self.position + 1):
            self.position += 1
            member = self.identifier()
            if self._take("("):
                value = _call(value, member, self._arguments())
            else:
                value = value[member]
        return value, quiet

    def identifier(self) -> str:
        name = _IDENTIFIER.match(self.text, self.position)
        assert name, f"no identifier at {self.text[self.position :]!r}"
        self.position = name.end()
        return name[0]

    def expect(self, token: str) -> None:
        self._skip_spaces()
        assert self._take(token), f"expected {token!r} at {self.text[self.position :]!r}"

    def expect_end(self) -> None:
        self._skip_spaces()
        assert self.position == len(self.text), f"unsupported: {self.text[self.position :]!r}"

    def _arguments(self) -> list[Any]:
        arguments: list[Any] = []
        self._skip_spaces()
        while not self._take(")"):
            if arguments:
                self.expect(",")
            arguments.append(self.value())
            self._skip_spaces()
        return arguments

    def _quoted(self, quote: str) -> str:
        end = self.text.index(quote, self.position + 1)
        content = self.text[self.position + 1 : end]
        self.position = end + 1
        return content

    def _take(self, token: str) -> bool:
        if self.text.startswith(token, self.position):
            self.position += len(token)
            return True
        return False

    def _skip_spaces(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1


def _call(receiver: Any, method: str, arguments: list[Any]) -> Any:
    if receiver is None:  # a method of null is null, as in Velocity
        return None
    if isinstance(receiver, str):
        assert method in _STRING_METHODS, f"unsupported String method {method}"
        return _STRING_METHODS[method](receiver, *arguments)
    assert isinstance(receiver, (_Input, _Util)) and not method.startswith("_"), (receiver, method)
    return getattr(receiver, method)(*arguments)


def api_method(synthesized, http_method: str) -> dict:
    """The properties of the API's only method with this HTTP verb, references rendered."""
    (method_id,) = [
        key
        for key, method in synthesized.of_type("AWS::ApiGateway::Method").items()
        if method["Properties"]["HttpMethod"] == http_method
    ]
    return synthesized.render(synthesized.properties(method_id))


@pytest.fixture(scope="module")
def method(synthesized) -> dict:
    return api_method(synthesized, "POST")


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


def test_the_execution_name_template_cuts_at_the_shared_lengths_and_fits_step_functions(request_template):
    directives = request_template.split("\n{", 1)[0]
    assert f"#set($repo = $repo.substring(0, {REPO_LENGTH}))" in directives
    assert f"#set($commit = $commit.substring(0, {COMMIT_LENGTH}))" in directives
    # Formal references: "$repo-" would be read as a variable named "repo-".
    names = re.findall(r'#set\(\$name = "([^"]+)"\)', directives)
    assert sorted(names) == ["${repo}-$context.requestId", "${repo}-${commit}-$context.requestId"]
    # $context.requestId is a UUID: it makes the name unique and finds the request in the access logs.
    assert REPO_LENGTH + 1 + COMMIT_LENGTH + 1 + len(CONTEXT["requestId"]) <= MAX_LENGTH


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


@pytest.mark.parametrize("fields", NAMED_REQUESTS)
def test_the_execution_name_is_the_shared_rules_with_the_request_id(request_template, fields):
    body = {"astroWorkspace": "analytics", "astroDeployment": "prod", "body": {"dags": []}, **fields}
    vtl = Vtl(body, CONTEXT)
    request = json.loads(vtl.render(request_template))
    expected = execution_name(fields["repo"], fields.get("commit"), CONTEXT["requestId"])
    assert vtl.variables["name"] == request["name"] == expected
    assert len(expected) <= MAX_LENGTH
    assert json.loads(request["input"]) == body


def test_the_202_answer_gives_the_execution_its_name_and_status_url(request_template, integration):
    body = {"astroWorkspace": "analytics", "astroDeployment": "prod", "repo": "team.dags", "commit": "0a1b2c3d4e5f"}
    name = json.loads(Vtl(body, CONTEXT).render(request_template))["name"]
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:AstroDagDeploy-Pipeline:{name}"
    (started,) = [response for response in integration["IntegrationResponses"] if "SelectionPattern" not in response]
    answer = Vtl({"executionArn": arn, "startDate": 1767225600.0}, CONTEXT).render(started["ResponseTemplates"][JSON])
    assert json.loads(answer) == {
        "executionArn": arn,
        "name": name,
        "statusUrl": f"https://{CONTEXT['domainName']}/{CONTEXT['stage']}/deployments/{name}",
    }


def test_responses_map_start_execution_results(integration, method):
    responses = {response.get("SelectionPattern"): response for response in integration["IntegrationResponses"]}
    assert {pattern: response["StatusCode"] for pattern, response in responses.items()} == {
        None: "202",
        "4\\d{2}": "400",
        "5\\d{2}": "502",
    }
    assert {response["StatusCode"] for response in method["MethodResponses"]} == {"202", "400", "409", "502"}

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


@pytest.fixture(scope="module")
def status_method(synthesized) -> dict:
    return api_method(synthesized, "GET")


def test_get_deployment_status_requires_iam_authorization_and_a_validated_execution_name(synthesized, status_method):
    assert status_method["AuthorizationType"] == "AWS_IAM"
    resource = synthesized.properties(status_method["ResourceId"].strip("<>"))
    assert resource["PathPart"] == "{executionName}"
    assert synthesized.properties(resource["ParentId"]["Ref"])["PathPart"] == "deployments"
    assert status_method["RequestParameters"] == {"method.request.path.executionName": True}
    validator = synthesized.properties(status_method["RequestValidatorId"].strip("<>"))
    assert validator["ValidateRequestParameters"] is True
    assert {response["StatusCode"] for response in status_method["MethodResponses"]} == {"200", "400", "404"}


def test_get_deployment_status_is_proxied_to_the_status_function(synthesized, status_method):
    function_id = synthesized.function_id(STATUS_HANDLER)
    integration = status_method["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert integration["Uri"] == (
        "arn:<AWS::Partition>:apigateway:<AWS::Region>:lambda:path/2015-03-31/functions/"
        f"<{function_id}.Arn>/invocations"
    )
    # Only this method of the deployed stage may invoke it: no permission for the console's test invocations.
    (permission,) = [
        synthesized.render(permission["Properties"])
        for permission in synthesized.of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    stage_id, _ = synthesized.only("AWS::ApiGateway::Stage")
    assert permission == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": f"<{function_id}.Arn>",
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:{status_method['RestApiId']}"
        f"/<{stage_id}>/GET/deployments/*",
    }


def test_the_deployments_url_and_the_status_url_pattern_are_outputs(synthesized):
    deployments_url = synthesized.output_value("DeploymentsUrl")
    assert deployments_url.startswith("https://") and deployments_url.endswith("/deployments")
    assert synthesized.output_value("DeploymentStatusUrl") == f"{deployments_url}/{{executionName}}"
