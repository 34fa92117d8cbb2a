"""Where things live in the DAG bucket, and the rules that keep every request inside its own prefix."""

import re

DAGS_ROOT = "dags/"
PLANS_ROOT = "plans/"
RESTORE_POINTS_ROOT = "restore-points/"
# Beside dags/, never under it: an archive is not a DAG file, and no listing of a deployment meets it.
ARCHIVES_ROOT = "archives/"
MANIFESTS_ROOT = "manifests/"

# Workspace, deployment and repo names become single S3 path segments.
SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SEGMENT_RULE = "1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit"

# One segment of a file's path inside a repo: printable ASCII without / \ % and quotes; dotfiles allowed.
PATH_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.@+=,~-](?:[A-Za-z0-9 _.@+=,~-]{0,253}[A-Za-z0-9_.@+=,~-])?")
PATH_RULE = (
    "a relative path of segments made of A-Z a-z 0-9 and _ . @ + = , ~ - (inner spaces allowed), "
    "no empty, '.' or '..' segments, at most 512 characters"
)
MAX_PATH_LENGTH = 512

S3_URI_PATTERN = r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([^\x00-\x1f\x7f]{1,1024})$"
S3_URI_RE = re.compile(S3_URI_PATTERN)
S3_RULE = "an s3://bucket/key URI"


def is_segment(value: str) -> bool:
    return bool(SEGMENT_RE.fullmatch(value))


def deployment_prefix(workspace: str, deployment: str) -> str:
    return _join_segments(workspace, deployment)


def repo_prefix(workspace: str, deployment: str, repo: str) -> str:
    return _join_segments(workspace, deployment, repo)


def repo_archive_key(workspace: str, deployment: str, repo: str) -> str:
    """The archive of a repo prefix (functions/shared/repo_archive.py)."""
    return ARCHIVES_ROOT + _checked(workspace, deployment, repo).removesuffix("/") + ".zip"


def _join_segments(*segments: str) -> str:
    return DAGS_ROOT + _checked(*segments)


def _checked(*segments: str) -> str:
    # Checked again here, not only in the request model: every key the steps touch is built from these.
    for segment in segments:
        if not is_segment(segment):
            raise ValueError(f"{segment!r} is not a valid path segment ({SEGMENT_RULE})")
    return "".join(f"{segment}/" for segment in segments)


def normalize_relative_path(path: str) -> str:
    """Return the canonical form of a repo-relative path, or raise ValueError saying why it is refused."""
    if not path:
        raise ValueError("the path is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"the path is longer than {MAX_PATH_LENGTH} characters")
    if path.startswith("/"):
        raise ValueError("the path is absolute")
    segments = [segment for segment in path.split("/") if segment != "."] if path != "." else []
    if not segments:
        raise ValueError("the path names no file")
    for segment in segments:
        if segment == "":
            raise ValueError("the path has an empty segment")
        if segment == "..":
            raise ValueError("the path escapes its folder with '..'")
        if not PATH_SEGMENT_RE.fullmatch(segment):
            raise ValueError(f"segment {segment[:40]!r} has characters outside the safe set")
    return "/".join(segments)


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = S3_URI_RE.fullmatch(uri)
    if not match:
        raise ValueError(f"{uri[:80]!r} is not {S3_RULE}")
    return match[1], match[2]


def plan_key(execution: str) -> str:
    return f"{PLANS_ROOT}{execution}.json"


def parse_report_key(execution: str) -> str:
    return f"{PLANS_ROOT}{execution}.report.json"


def restore_point_key(execution: str) -> str:
    return f"{RESTORE_POINTS_ROOT}{execution}.json"


def manifests_prefix(workspace: str, deployment: str) -> str:
    """Where what is live for a deployment is recorded (functions/shared/manifest.py)."""
    return MANIFESTS_ROOT + _join_segments(workspace, deployment).removeprefix(DAGS_ROOT)


def repo_manifest_key(workspace: str, deployment: str, repo: str) -> str:
    if not is_segment(repo):
        raise ValueError(f"{repo!r} is not a valid path segment ({SEGMENT_RULE})")
    return f"{manifests_prefix(workspace, deployment)}repos/{repo}.json"


def bundle_ship_key(workspace: str, deployment: str, bundle: str) -> str:
    # Bundle names are a-z 0-9 - _ (functions/shared/dag_bundles.py): no "/" or "..", checked again here.
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", bundle):
        raise ValueError(f"{bundle!r} is not a Dag bundle name")
    return f"{manifests_prefix(workspace, deployment)}bundles/{bundle}.json"
