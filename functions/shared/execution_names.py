"""Execution names: unique, and traceable to the repo and commit they deploy.

The API's request template (cdk/api.py, VTL) names each execution it starts by this rule from the request body
and API Gateway's request ID; `astro-dag-deploy serve` and the tests use `execution_name`, so all three agree.
"""

import re

REPO_LENGTH = 30
COMMIT_LENGTH = 8
# Step Functions' limit on an execution name.
MAX_LENGTH = 80
_REPO_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_COMMIT_UNSAFE = re.compile(r"[^A-Za-z0-9]")
# Characters Step Functions refuses in a name, besides whitespace and control characters.
_REFUSED = frozenset('<>{}[]?*"#%\\^|~`$&,;:/')


def execution_name(repo: str, commit: str | None, unique: str) -> str:
    """`<repo>-<commit>-<unique>` (or `<repo>-<unique>`): the repo with anything but A-Z a-z 0-9 _ - made a "-"
    and cut to 30 characters, the commit's first 8 letters and digits, then the caller's unique suffix."""
    repo_part = _REPO_UNSAFE.sub("-", repo)[:REPO_LENGTH]
    commit_part = _COMMIT_UNSAFE.sub("", commit or "")[:COMMIT_LENGTH]
    name = f"{repo_part}-{commit_part}-{unique}" if commit_part else f"{repo_part}-{unique}"
    problem = execution_name_problem(name)
    if problem:
        raise ValueError(f"cannot name an execution {name!r}: {problem}")
    return name


def execution_name_problem(name: str) -> str | None:
    """Why Step Functions would refuse `name` as an execution name, or None if it accepts it."""
    if not 1 <= len(name) <= MAX_LENGTH:
        return f"it must be 1 to {MAX_LENGTH} characters long"
    for character in name:
        code = ord(character)
        if character.isspace() or code < 0x20 or 0x7F <= code <= 0x9F:
            return "it must not contain whitespace or control characters"
        if character in _REFUSED:
            return f"it must not contain {character!r}"
    return None
