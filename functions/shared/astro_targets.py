"""Which Astro workspace and deployment IDs a request's names stand for (cdk.json context `astroDeployments`).

The mapping is JSON: {"<workspace>/<deployment>": {"deploymentId": "...", "workspaceId": "...", "dagBundles":
"main" | "per-repo", "createBundles": true, "bundleNames": {"<repo>": "<bundle>"}}}. A `*` in place of either name
matches any name, and `{workspace}` / `{deployment}` in an ID are replaced by the names: the local mode maps
everything with {"*/*": {"deploymentId": "local-{deployment}"}}. Bundles: functions/shared/dag_bundles.py.
"""

import json
from dataclasses import dataclass, field

from functions.shared.dag_bundles import MAIN_MODE, bundle_for
from functions.shared.errors import AstroConfigError

CONTEXT_KEY = "astroDeployments"
DEPLOYMENT_ENTRY_KEYS = ("deploymentId", "workspaceId", "dagBundles", "createBundles", "bundleNames")


@dataclass
class AstroTarget:
    deployment_id: str
    workspace_id: str | None = None
    dag_bundles: str = MAIN_MODE
    # Whether the deploy step creates a per-repo bundle that does not exist yet (else the request fails).
    create_bundles: bool = True
    bundle_names: dict[str, str] = field(default_factory=dict)

    def bundle(self, repo: str) -> str:
        """The Dag bundle `repo` ships to (UnmappableRepo when its name gives none)."""
        return bundle_for(repo, self.dag_bundles, self.bundle_names)


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
                dag_bundles=entry.get("dagBundles", MAIN_MODE),
                create_bundles=entry.get("createBundles", True),
                bundle_names=dict(entry.get("bundleNames", {})),
            )
    raise AstroConfigError(
        f"no Astro deployment is configured for workspace {workspace!r}, deployment {deployment!r}: "
        f'add "{workspace}/{deployment}": {{"deploymentId": "<Astro deployment ID>"}} to the '
        f"{CONTEXT_KEY} context in cdk.json and run cdk deploy"
    )
