"""Which Astro workspace and deployment IDs a request's names stand for (cdk.json context `astroDeployments`).

The mapping is JSON: {"<workspace>/<deployment>": {"deploymentId": "...", "workspaceId": "...", "dagBundles":
"main" | "per-repo", "createBundles": true, "bundleNames": {"<repo>": "<bundle>"}, "installedPackages": ["<module>"]}}.
`installedPackages` (optional) lists the top-level modules importable in the deployment besides the standard
library and `airflow`: given, Parse refuses imports of any other module the bundle does not hold. A `*` in place of either name
matches any name, and `{workspace}` / `{deployment}` in an ID are replaced by the names: the local mode maps
everything with {"*/*": {"deploymentId": "local-{deployment}"}}. Bundles: functions/shared/dag_bundles.py.

The stack stores each entry as its own SSM parameter, `<path><workspace>/<deployment>` (`_any` for `*`, which SSM
names cannot hold), and the functions read the ones a request could match, through powertools' parameters utility
with a cache: no size limit on the whole configuration (an environment variable holds 4 KB in all), one
GetParameters call per lookup however many deployments there are.
"""

import functools
import os
from collections.abc import Mapping
from dataclasses import field

from functions.shared.aws import client
from functions.shared.dag_bundles import MAIN_MODE, bundle_for
from functions.shared.errors import AstroConfigError
from functions.shared.records import Record

CONTEXT_KEY = "astroDeployments"
DEPLOYMENT_ENTRY_KEYS = (
    "deploymentId", "workspaceId", "dagBundles", "createBundles", "bundleNames", "installedPackages",
)
# The environment variable naming the parameters' path, and what stands for `*` in a parameter's name.
PARAMETER_PATH_VARIABLE = "ASTRO_TARGETS_PATH"
ANY_NAME = "_any"  # names start with a letter or digit: no workspace or deployment is called that
# How long a function reuses an entry it read: a changed configuration reaches warm functions within this.
CACHE_SECONDS = 60


class AstroTarget(Record):
    deployment_id: str
    workspace_id: str | None = None
    dag_bundles: str = MAIN_MODE
    # Whether the deploy step creates a per-repo bundle that does not exist yet (else the request fails).
    create_bundles: bool = True
    bundle_names: dict[str, str] = field(default_factory=dict)
    # Top-level modules installed in the deployment (besides the standard library and airflow); None: not known.
    installed_packages: frozenset[str] | None = None

    def bundle(self, repo: str) -> str:
        """The Dag bundle `repo` ships to (UnmappableRepo when its name gives none)."""
        return bundle_for(repo, self.dag_bundles, self.bundle_names)


def parameter_name(path: str, key: str) -> str:
    """The SSM parameter of the configuration entry `key` ("<workspace>/<deployment>", either maybe `*`)."""
    return path + "/".join(ANY_NAME if part == "*" else part for part in key.split("/"))


def _candidate_keys(workspace: str, deployment: str) -> list[str]:
    """The entries a request could match, most specific first."""
    return [f"{workspace}/{deployment}", f"{workspace}/*", f"*/{deployment}", "*/*"]


def resolve_astro_target(workspace: str, deployment: str, configured: Mapping[str, object] | None = None) -> AstroTarget:
    """The target of `workspace`/`deployment`: from `configured` entries when given, else from the stack's
    parameters (the path in ASTRO_TARGETS_PATH)."""
    entries = configured if configured is not None else _stored_entries(workspace, deployment)
    for key in _candidate_keys(workspace, deployment):
        entry = entries.get(key)
        if isinstance(entry, dict) and entry.get("deploymentId"):
            names = {"workspace": workspace, "deployment": deployment}
            workspace_id = entry.get("workspaceId")
            return AstroTarget(
                deployment_id=entry["deploymentId"].format_map(names),
                workspace_id=workspace_id.format_map(names) if workspace_id else None,
                dag_bundles=entry.get("dagBundles", MAIN_MODE),
                create_bundles=entry.get("createBundles", True),
                bundle_names=dict(entry.get("bundleNames", {})),
                installed_packages=(frozenset(entry["installedPackages"]) if entry.get("installedPackages")
                                    is not None else None),
            )
    raise AstroConfigError(
        f"no Astro deployment is configured for workspace {workspace!r}, deployment {deployment!r}: "
        f'add "{workspace}/{deployment}": {{"deploymentId": "<Astro deployment ID>"}} to the '
        f"{CONTEXT_KEY} context in cdk.json and run cdk deploy"
    )


def _stored_entries(workspace: str, deployment: str) -> dict[str, object]:
    names = {parameter_name(os.environ[PARAMETER_PATH_VARIABLE], key): key
             for key in _candidate_keys(workspace, deployment)}
    # Entries not configured come back under "_errors" instead of raising: most lookups match a wildcard. The stack
    # writes every value as JSON (cdk/astro_targets.py).
    values = _parameters(client("ssm")).get_parameters_by_name(
        parameters={name: {} for name in names}, transform="json", max_age=CACHE_SECONDS, raise_on_error=False
    )
    return {key: values[name] for name, key in names.items() if name in values}


@functools.cache
def _parameters(ssm_client: object):
    """One provider, and so one cache, per SSM client (the steps make one per process: functions/shared/aws.py)."""
    # Imported on the first lookup, not with the handler: only the steps that resolve targets pay for it.
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    return SSMProvider(boto3_client=ssm_client)
