"""The Astro targets (`astroDeployments` in cdk.json) as SSM parameters, one per entry, which the functions read
through functions/shared/astro_targets.py: hundreds of deployments, where a Lambda environment variable (4 KB for
all of them) held about 30."""

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk.config import STANDARD_PARAMETER_BYTES, StackSettings
from cdk.nag import suppress
from functions.shared.astro_targets import PARAMETER_PATH_VARIABLE, parameter_name

# SSM throttles PutParameter at a few calls a second: CloudFormation creates this many entries at once, each after
# the one this many places before it, instead of hundreds together.
PARALLEL_CREATIONS = 5


class AstroTargets(Construct):
    def __init__(self, scope: Construct, construct_id: str, settings: StackSettings):
        super().__init__(scope, construct_id)
        self.path = settings.astro_targets_path
        created: list[ssm.StringParameter] = []
        for key, value in settings.astro_target_values().items():
            parameter = ssm.StringParameter(
                self,
                key.replace("/", "|"),
                parameter_name=parameter_name(self.path, key),
                string_value=value,
                description=f"astro-dag-deploy: the Astro target of {key} (astroDeployments in cdk.json)",
                # Over 4 KB only an advanced parameter holds it (cdk/config.py refuses more than 8 KB).
                tier=ssm.ParameterTier.STANDARD
                if len(value.encode()) <= STANDARD_PARAMETER_BYTES
                else ssm.ParameterTier.ADVANCED,
            )
            if len(created) >= PARALLEL_CREATIONS:
                parameter.node.add_dependency(created[-PARALLEL_CREATIONS])
            created.append(parameter)
        self._arn_pattern = Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=f"{self.path.strip('/')}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    @property
    def environment(self) -> dict[str, str]:
        """What a function that resolves targets needs in its environment."""
        return {PARAMETER_PATH_VARIABLE: self.path}

    def grant_read(self, function: lambda_.IFunction) -> None:
        """GetParameters on this stack's entries only (no decryption: they are String parameters)."""
        function.add_to_role_policy(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[self._arn_pattern]))
        suppress(
            function.role,
            "IAM5",
            "A request may name any configured deployment, and a wildcard entry matches names not known at deploy "
            "time: the grant covers this stack's astroDeployments parameters, under its own path.",
            [f"Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/{self.path.strip('/')}/*"],
        )
