"""The stack's CloudFormation template, synthesized once per process, and its tokens resolved: to local resources
for the local mode, to placeholders for the infrastructure tests."""

import copy
import json
import re
import threading
from abc import ABC, abstractmethod
from typing import Any


ARTIFACTS_BUCKET = "local-artifacts"
# Every workspace/deployment name maps to a local Astro ID: scenarios need no Astro configuration. The token
# secret is always the stack's own (created locally), even when cdk.json names an existing one.
LOCAL_CONTEXT: dict[str, Any] = {
    "sourceBuckets": [ARTIFACTS_BUCKET],
    "astroDeployments": {"*/*": {"deploymentId": "local-{deployment}"}},
    "astroTokenSecretArn": None,
    # The local mode runs the handlers from the checkout: CDK skips building the assets (their bytecode), and the
    # template, asset keys included, is the same.
    "aws:cdk:bundling-stacks": [],
}

_templates: dict[str, dict] = {}
_synth_lock = threading.Lock()


def stack_template(context_overrides: dict[str, Any] | None = None) -> dict:
    """The template `cdk synth` would produce with these context overrides (a copy: callers may change it).

    Synthesis runs jsii (seconds), so each set of overrides is synthesized once per process.
    """
    overrides = {**LOCAL_CONTEXT, **(context_overrides or {})}
    key = json.dumps(overrides, sort_keys=True)
    with _synth_lock:
        if key not in _templates:
            # Imported on first use: loading the CDK's jsii assemblies alone takes about a second.
            from cdk.app import synthesize_template

            _templates[key] = synthesize_template(overrides)
        return copy.deepcopy(_templates[key])


class UnresolvedReference(LookupError):
    """A token names a resource or parameter that has no local counterpart (yet)."""

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        super().__init__(f"cannot resolve {name!r}{': ' + detail if detail else ''}")


_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


class IntrinsicResolver(ABC):
    """Evaluates CloudFormation intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split) as
    CloudFormation would; subclasses say what a reference and an attribute stand for."""

    @abstractmethod
    def ref(self, name: str) -> str: ...

    @abstractmethod
    def attribute(self, logical_id: str, name: str) -> str: ...

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical_id, name = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.attribute(logical_id, self.resolve(name))
            if function == "Fn::Join":
                delimiter, items = argument
                return self.resolve(delimiter).join(str(item) for item in self.resolve(items))
            if function == "Fn::Sub":
                return self._substitute(argument)
            if function == "Fn::Select":
                index, items = self.resolve(argument)
                return items[int(index)]
            if function == "Fn::Split":
                delimiter, text = self.resolve(argument)
                return text.split(delimiter)
            if function.startswith("Fn::") or function == "Condition":
                raise UnresolvedReference(function, "intrinsic not supported by the local mode")
        return {key: self.resolve(item) for key, item in value.items()}

    def _substitute(self, argument: str | list) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return self.attribute(*name.split(".", 1))
            return self.ref(name)

        return _SUB_VARIABLE.sub(replace, text)


class TokenResolver(IntrinsicResolver):
    """References resolved against the resources registered so far, as CloudFormation would against the deployed
    ones."""

    def __init__(self, template: dict, account: str, region: str, stack_name: str, partition: str = "aws"):
        self._parameters = template.get("Parameters", {})
        self._pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack_name}/local",
        }
        self._refs: dict[str, str] = {}
        self._attributes: dict[str, dict[str, str]] = {}

    def register(self, logical_id: str, ref: str, **attributes: str) -> None:
        self._refs[logical_id] = ref
        self._attributes[logical_id] = attributes

    def ref(self, name: str) -> str:
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._refs:
            return self._refs[name]
        parameter = self._parameters.get(name)
        if parameter is not None:
            if parameter.get("Type", "").startswith("AWS::SSM::Parameter::") or "Default" not in parameter:
                raise UnresolvedReference(name, "a parameter only a real deployment resolves")
            return parameter["Default"]
        raise UnresolvedReference(name)

    def attribute(self, logical_id: str, name: str) -> str:
        if logical_id not in self._attributes:
            raise UnresolvedReference(logical_id)
        try:
            return self._attributes[logical_id][name]
        except KeyError:
            raise UnresolvedReference(f"{logical_id}.{name}", "attribute not provided locally") from None


class PlaceholderResolver(IntrinsicResolver):
    """References written as cdk-nag names them, Ref -> <Id> and Fn::GetAtt -> <Id.Attribute>: the template read
    without deploying it (values assembled by Fn::Join, such as the state machine's definition, become text)."""

    def ref(self, name: str) -> str:
        return f"<{name}>"

    def attribute(self, logical_id: str, name: str) -> str:
        return f"<{logical_id}.{name}>"
