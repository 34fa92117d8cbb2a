"""The CDK app (`python -m cdk.app`, what cdk.json runs), and the template for whoever needs it without the CLI.

The local mode calls `synthesize_template` to run the exact template `cdk deploy` would ship.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects
from cdk_nag import AwsSolutionsChecks

from cdk.config import CONTEXT_KEYS, StackSettings
from cdk.stack import AstroDagDeployStack

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"


def cdk_json_context() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())["context"]


def build_stack(
    context: dict[str, Any] | None = None, *, outdir: str | None = None
) -> tuple[App, AstroDagDeployStack]:
    """The app and its stack, from cdk.json's context with `context` applied over it.

    The CDK CLI's own context (cdk.json, cdk.context.json, -c) sits between the two.
    """
    app = App(context=cdk_json_context(), post_cli_context=context or {}, outdir=outdir)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    settings = StackSettings.from_context({key: app.node.try_get_context(key) for key in CONTEXT_KEYS})
    stack = AstroDagDeployStack(app, settings.stack_name, settings=settings)
    return app, stack


def synthesize_template(context_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Synthesize the stack (cdk.json's context, then the overrides) and return its CloudFormation template."""
    with tempfile.TemporaryDirectory(prefix="astro-dag-deploy-cdk-") as outdir:
        app, stack = build_stack(context_overrides, outdir=outdir)
        return app.synth().get_stack_artifact(stack.artifact_id).template


def main() -> None:
    # The CDK CLI names its output directory; `make synth` leaves the template in cdk.out/.
    app, _ = build_stack(outdir=os.environ.get("CDK_OUTDIR") or str(PROJECT_ROOT / "cdk.out"))
    app.synth()


if __name__ == "__main__":
    main()
