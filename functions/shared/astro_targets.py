"""Which Astro workspace and deployment IDs a request's names stand for (cdk.json context `astroDeployments`).

The mapping is JSON: {"<workspace>/<deployment>": {"deploymentId": "...", "workspaceId": "..."}}. A `*` in
place of either name matches any name, and `{workspace}` / `{deployment}` in an ID are replaced by the names:
the local mode maps everything with {"*/*": {"deploymentId": "local-{deployment}"}}.
"""

import json
from dataclasses import dataclass

from functions.shared.errors import AstroConfigError

CONTEXT_KEY = "astroDeployments"


@dataclass
class AstroTarget:
    deployment_id: str
    workspace_id: str | None = None


def resolve_astro_target(workspace: str, deployment: str, mapping_json: str) -> AstroTarget:
    try:
        mapping = json.loads(mapping_json or "{}")
    except ValueError:
        raise AstroConfigError(f"the {CONTEXT_KEY} configuration is not valid JSON") from None
    for key in (f"{workspace}/{deployment}", f"{workspace}/*", f"*/{deployment}", "*/*"):
        entry = mapping.get(key)
        if isinstance(entry, dict) and entry.get("deploymentId"):
            names = {"workspace": workspace, "deployment": deployment}
            workspace_id = entry.get("workspaceId")
            return AstroTarget(
                deployment_id=entry["deploymentId"].format_map(names),
                workspace_id=workspace_id.format_map(names) if workspace_id else None,
            )
    raise AstroConfigError(
        f"no Astro deployment is configured for workspace {workspace!r}, deployment {deployment!r}: "
        f'add "{workspace}/{deployment}": {{"deploymentId": "<Astro deployment ID>"}} to the '
        f"{CONTEXT_KEY} context in cdk.json and run cdk deploy"
    )
