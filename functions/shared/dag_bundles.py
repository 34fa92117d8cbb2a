"""Astro Dag bundles: which bundle a repo ships to, by the deployment's `dagBundles` mode.

- `main` (the default, and the only mode Airflow 2 deployments have): every repo of the deployment ships together
  into the deployment's `main` bundle, each under `<repo>/`.
- `per-repo` (Airflow 3): each repo ships alone into a bundle of its own, the repo's root at the bundle's root.
  The bundle is named after the repo: lowercased, each `.` made `-` (`Marketing.ETL` -> `marketing-etl`); a
  `bundleNames` entry of the deployment's configuration names it explicitly instead.
"""

import re

MAIN_BUNDLE = "main"
MAIN_MODE = "main"
PER_REPO_MODE = "per-repo"
MODES = (MAIN_MODE, PER_REPO_MODE)
MAX_BUNDLE_NAME = 32
BUNDLE_NAME_RE = re.compile(r"[a-z0-9_-]{1,32}")
BUNDLE_NAME_RULE = f"1-{MAX_BUNDLE_NAME} characters from a-z 0-9 - _, and not {MAIN_BUNDLE!r}"


class UnmappableRepo(ValueError):
    """The repo's name gives no valid bundle name: the configuration must name its bundle."""


def is_bundle_name(name: object) -> bool:
    return isinstance(name, str) and name != MAIN_BUNDLE and bool(BUNDLE_NAME_RE.fullmatch(name))


def derived_bundle_name(repo: str) -> str:
    """The bundle a repo's name maps to by the documented rule, or UnmappableRepo saying why and what to do."""
    name = repo.lower().replace(".", "-")
    if len(name) > MAX_BUNDLE_NAME:
        raise UnmappableRepo(
            f"repo {repo!r} maps to no Dag bundle: bundle names are at most {MAX_BUNDLE_NAME} characters. Name its "
            f'bundle in cdk.json: "bundleNames": {{"{repo}": "<{BUNDLE_NAME_RULE}>"}}'
        )
    if name == MAIN_BUNDLE:
        raise UnmappableRepo(
            f"repo {repo!r} maps to the deployment's {MAIN_BUNDLE!r} bundle, which per-repo mode does not ship to. "
            f'Name its bundle in cdk.json: "bundleNames": {{"{repo}": "<another name>"}}'
        )
    return name


def lock_key(workspace: str, deployment: str, bundle: str = MAIN_BUNDLE) -> str:
    """The key of the lock that orders a bundle's ships (functions/shared/locking.py): one per deployment's `main`
    bundle, one per bundle of its own."""
    # Neither segments nor bundle names hold "#": keys of different bundles never meet.
    return f"{workspace}/{deployment}" if bundle == MAIN_BUNDLE else f"{workspace}/{deployment}#{bundle}"


def bundle_for(repo: str, mode: str, bundle_names: dict[str, str]) -> str:
    """The bundle `repo` ships to in a deployment of this mode."""
    if mode == MAIN_MODE:
        return MAIN_BUNDLE
    return bundle_names.get(repo) or derived_bundle_name(repo)
