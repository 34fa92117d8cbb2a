"""Which files of a bundle Airflow parses as DAG files: nested `.airflowignore` files and safe mode.

Airflow's dag processor (`airflow.utils.file.list_py_file_paths`) walks the bundle honouring every `.airflowignore`
(default glob syntax, `[core] dag_ignore_file_syntax`): a file's rules apply to its folder and below, later rules
(`!` negations too) override earlier ones, and an ignored folder is not entered at all. A pattern with a `/` at its
start or middle is matched against the path relative to the folder of its `.airflowignore`, any other against the
name alone. Of the `.py` files left, safe mode (the default, `[core] dag_discovery_safe_mode`) parses only those
whose text mentions `airflow` and `dag` (or `asset`). A file Airflow does not parse is never imported as a DAG file.

Airflow matches each pattern with pathspec's git wildmatch; the Lambda carries only the standard library and the
powertools layer, so the same rules are written here with `fnmatch` per path segment, and the tests check them
against Airflow's own listing (tests/oracle).
"""

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from posixpath import dirname, join

from functions.shared.records import FrozenRecord

IGNORE_FILE = ".airflowignore"
# What Airflow strips from each line of an ignore file before compiling it (everything from a `#`).
_COMMENT = re.compile(r"\s*#.*")
# Safe mode's test (airflow.utils.file.might_contain_dag_via_default_heuristic), on the lowercased text.
_SAFE_MODE_WORDS = (b"airflow",)
_SAFE_MODE_ANY_OF = (b"dag", b"asset")


class IgnoreRule(FrozenRecord):
    pattern: str  # as written, for messages
    segments: tuple[str, ...]
    anchored: bool  # matched against the path from the rule's folder, else against the name alone
    folders_only: bool  # the pattern ends with `/`
    negated: bool
    folder: str  # the folder of the `.airflowignore` that holds it ("" for the root)

    @classmethod
    def compile(cls, line: str, folder: str) -> "IgnoreRule | None":
        pattern = line.strip()
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        folders_only = body.endswith("/")
        body = body.rstrip("/")
        if not body:
            return None  # "/" matches nothing in gitignore
        anchored = "/" in body
        segments = tuple(part for part in body.lstrip("/").split("/") if part)
        return cls(pattern, segments, anchored, folders_only, negated, folder)

    def matches(self, path: str, is_folder: bool) -> bool:
        if self.folders_only and not is_folder:
            return False
        if not self.anchored:
            return len(self.segments) == 1 and (self.segments[0] == "**" or fnmatchcase(path.rsplit("/", 1)[-1],
                                                                                         self.segments[0]))
        relative = path[len(self.folder) + 1:] if self.folder else path
        return _segments_match(self.segments, tuple(relative.split("/")))


def _segments_match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """git wildmatch on whole segments: `**` is any number of folders, other globs stay inside one segment."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_segments_match(rest, path[start:]) for start in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], head) and _segments_match(rest, path[1:])


class IgnoreRules:
    """The `.airflowignore` files of one bundle (or of one repo: its root stands for the bundle's)."""

    def __init__(self, ignore_files: Mapping[str, str]):
        """`ignore_files`: path of each `.airflowignore` (relative to the root) -> its text."""
        self._rules: dict[str, list[IgnoreRule]] = {}
        for path, text in ignore_files.items():
            folder = dirname(path)
            rules = [IgnoreRule.compile(_COMMENT.sub("", line), folder) for line in text.split("\n")]
            self._rules[folder] = [rule for rule in rules if rule is not None]

    def ignored_by(self, path: str) -> IgnoreRule | None:
        """The rule that keeps Airflow from listing `path` (or a folder above it), or None when it is listed."""
        parts = path.split("/")
        active: list[IgnoreRule] = []
        for depth in range(len(parts)):
            folder = "/".join(parts[:depth])
            active = active + self._rules.get(folder, [])
            current = join(folder, parts[depth]) if folder else parts[depth]
            is_folder = depth < len(parts) - 1
            decisive = None
            for rule in active:
                if rule.matches(current, is_folder):
                    decisive = rule
            if decisive is not None and not decisive.negated:
                return decisive
        return None


def might_contain_dag(source: bytes) -> bool:
    """Safe mode's test: Airflow parses a `.py` file only if its text mentions these words."""
    text = source.lower()
    return all(word in text for word in _SAFE_MODE_WORDS) and any(word in text for word in _SAFE_MODE_ANY_OF)


def ignore_files(paths: Iterable[str]) -> list[str]:
    """The `.airflowignore` files among `paths`."""
    return [path for path in paths if path.rsplit("/", 1)[-1] == IGNORE_FILE]


def describe_rule(rule: IgnoreRule) -> str:
    return f"{join(rule.folder, IGNORE_FILE)} ({rule.pattern!r})"
