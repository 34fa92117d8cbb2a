"""The deployments API, IAM-signed requests only.

POST /deployments: a request, validated against the request model, starts one execution. An AwsIntegration calls
states:StartExecution itself: API Gateway's Step Functions integrations call StartSyncExecution, which only EXPRESS
machines accept.
GET /deployments/{executionName}: the status function (cdk/status.py) tells how that execution is doing.
GET /targets/{workspace}/{deployment}: the same function tells what is live there, repo by repo.
"""

import json

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk.config import StackSettings
from cdk.nag import suppress
from functions.shared.execution_names import COMMIT_LENGTH, REPO_LENGTH
from functions.shared.models import api_json_schema

RESOURCE = "deployments"
EXECUTION_NAME = "executionName"
TARGETS_RESOURCE = "targets"
TARGET_PARAMETERS = ("workspace", "deployment")
MODEL_NAME = "DeployRequest"
JSON = "application/json"
# CI jobs call once per push: a handful per second is plenty, and caps what a leaked credential can start.
THROTTLING_RATE_LIMIT = 10
THROTTLING_BURST_LIMIT = 20

# $util.escapeJavaScript escapes ' as \', which JSON refuses: the replaceAll undoes exactly that.
_JSON_ESCAPED_BODY = """$util.escapeJavaScript($input.json('$')).replaceAll("\\\\'", "'")"""
# Quiet ($!): an error without a message renders as "" instead of the expression's text.
_JSON_ESCAPED_MESSAGE = """$!util.escapeJavaScript($input.path('$.message')).replaceAll("\\\\'", "'")"""

# The execution name says which repo and commit it deploys and which API request started it (unique, and
# findable in the access logs): shared.execution_names' rule, with API Gateway's request ID as the unique part.
# Only [A-Za-z0-9_-] reach it, so the name is valid whatever Step Functions accepts, and within its MAX_LENGTH:
# the request ID is a UUID (36 characters). Formal references (${repo}): VTL identifiers may contain "-",
# "$repo-" would be another variable.
EXECUTION_NAME_TEMPLATE = f"""#set($repo = "$input.path('$.repo')")
#set($repo = $repo.replaceAll("[^A-Za-z0-9_-]", "-"))
#if($repo.length() > {REPO_LENGTH})#set($repo = $repo.substring(0, {REPO_LENGTH}))#end
#set($commit = "$!input.path('$.commit')")
#set($commit = $commit.replaceAll("[^A-Za-z0-9]", ""))
#if($commit.length() > {COMMIT_LENGTH})#set($commit = $commit.substring(0, {COMMIT_LENGTH}))#end
#if($commit == "")#set($name = "${{repo}}-$context.requestId")
#else#set($name = "${{repo}}-${{commit}}-$context.requestId")#end
"""

# StartExecution answers {"executionArn", "startDate"}; the name is the ARN's last field. It needs no escaping in
# the status URL: names hold only [A-Za-z0-9_-] (EXECUTION_NAME_TEMPLATE).
STARTED_TEMPLATE = f"""#set($arn = "$input.path('$.executionArn')")
#set($nameStart = $arn.lastIndexOf(':') + 1)
#set($name = $arn.substring($nameStart))
{{
  "executionArn": "$arn",
  "name": "$name",
  "statusUrl": "https://$context.domainName/$context.stage/{RESOURCE}/$name"
}}"""

# Step Functions reports client errors as HTTP 400 with {"__type": "<namespace>#<Error>", "message"}.
REFUSED_TEMPLATE = f"""#set($type = "$input.path('$.__type')")
#set($errorStart = $type.lastIndexOf('#') + 1)
#set($error = $type.substring($errorStart))
#if($error == "ExecutionAlreadyExists")#set($context.responseOverride.status = 409)#end
{{"error": "$error", "message": "{_JSON_ESCAPED_MESSAGE}"}}"""

UNAVAILABLE_TEMPLATE = f"""{{"error": "StepFunctionsUnavailable", "message": "{_JSON_ESCAPED_MESSAGE}"}}"""

# Gateway responses are not VTL: plain substitution only.
BAD_REQUEST_BODY_TEMPLATE = (
    '{"message": $context.error.messageString, "validationErrors": "$context.error.validationErrorString"}'
)


def start_execution_template(state_machine_arn: str) -> str:
    """The StartExecution request: the validated body, unchanged, is the execution's input."""
    return (
        EXECUTION_NAME_TEMPLATE
        + "{\n"
        + f'  "stateMachineArn": "{state_machine_arn}",\n'
        + '  "name": "$name",\n'
        + f'  "input": "{_JSON_ESCAPED_BODY}"\n'
        + "}"
    )


def _access_log_format() -> apigw.AccessLogFormat:
    fields = {
        "requestId": apigw.AccessLogField.context_request_id(),
        "requestTime": apigw.AccessLogField.context_request_time(),
        "caller": apigw.AccessLogField.context_identity_caller(),
        "userArn": apigw.AccessLogField.context_identity_user_arn(),
        "sourceIp": apigw.AccessLogField.context_identity_source_ip(),
        "httpMethod": apigw.AccessLogField.context_http_method(),
        "resourcePath": apigw.AccessLogField.context_resource_path(),
        "status": apigw.AccessLogField.context_status(),
        "responseLength": apigw.AccessLogField.context_response_length(),
        "integrationStatus": apigw.AccessLogField.context_integration_status(),
        "error": apigw.AccessLogField.context_error_message(),
    }
    return apigw.AccessLogFormat.custom(json.dumps(fields))


class DeploymentsApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        settings: StackSettings,
        state_machine: sfn.IStateMachine,
        status_function: lambda_.IFunction,
    ):
        super().__init__(scope, construct_id)

        access_logs = logs.LogGroup(self, "AccessLogs", retention=settings.log_retention)
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=settings.stack_name,
            description="Starts astro-dag-deploy executions and tells how they are doing",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logging needs the account's API Gateway CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                throttling_rate_limit=THROTTLING_RATE_LIMIT,
                throttling_burst_limit=THROTTLING_BURST_LIMIT,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=_access_log_format(),
                logging_level=apigw.MethodLoggingLevel.INFO,
                # Request bodies stay out of the execution logs; the execution's input holds them.
                data_trace_enabled=False,
                tracing_enabled=True,
            ),
        )
        model = self.api.add_model(
            "DeployRequestModel",
            model_name=MODEL_NAME,
            content_type=JSON,
            # Replaced below by the schema generated from the request model.
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )
        model.node.default_child.add_property_override("Schema", api_json_schema())
        # POST's body against its model, GET's path parameter (cdk-nag wants a validator that checks both).
        validator = self.api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={JSON: BAD_REQUEST_BODY_TEMPLATE},
        )

        start_role = iam.Role(self, "StartExecutionRole", assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"))
        state_machine.grant_start_execution(start_role)
        integration = apigw.AwsIntegration(
            service="states",
            action="StartExecution",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=start_role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={JSON: start_execution_template(state_machine.state_machine_arn)},
                integration_responses=[
                    apigw.IntegrationResponse(status_code="202", response_templates={JSON: STARTED_TEMPLATE}),
                    apigw.IntegrationResponse(
                        selection_pattern="4\\d{2}", status_code="400", response_templates={JSON: REFUSED_TEMPLATE}
                    ),
                    apigw.IntegrationResponse(
                        selection_pattern="5\\d{2}", status_code="502", response_templates={JSON: UNAVAILABLE_TEMPLATE}
                    ),
                ],
            ),
        )
        deployments = self.api.root.add_resource(RESOURCE)
        self.start_method = deployments.add_method(
            "POST",
            integration,
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_models={JSON: model},
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("202", "400", "409", "502")],
        )
        self.status_method = deployments.add_resource(f"{{{EXECUTION_NAME}}}").add_method(
            "GET",
            # The console's test invocations skip IAM authorization: only the deployed stage may invoke it.
            apigw.LambdaIntegration(status_function, proxy=True, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_parameters={f"method.request.path.{EXECUTION_NAME}": True},
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("200", "400", "404")],
        )
        targets = self.api.root.add_resource(TARGETS_RESOURCE)
        for parameter in TARGET_PARAMETERS:
            targets = targets.add_resource(f"{{{parameter}}}")
        self.targets_method = targets.add_method(
            "GET",
            apigw.LambdaIntegration(status_function, proxy=True, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.IAM,
            request_validator=validator,
            request_parameters={f"method.request.path.{parameter}": True for parameter in TARGET_PARAMETERS},
            method_responses=[apigw.MethodResponse(status_code=code) for code in ("200", "400", "404")],
        )
        for method in (self.start_method, self.status_method, self.targets_method):
            suppress(
                method,
                "COG4",
                "The callers are CI jobs holding IAM credentials: the method is authorized with AWS_IAM (SigV4), "
                "there are no Cognito users.",
            )
        suppress(
            self.api.deployment_stage,
            "APIG3",
            "Only SigV4-signed requests of IAM principals reach the integration and stage throttling bounds their "
            "rate; no WAF rule would apply to them.",
        )
        suppress(
            self.api.node.find_child("CloudWatchRole"),
            "IAM4",
            "API Gateway's account-level logging role: AmazonAPIGatewayPushToCloudWatchLogs is the policy AWS "
            "provides for exactly this role, and execution logging needs it.",
            ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
        )
