"""Imports that will resolve once the repo is in its Dag bundle, checked as Airflow's dag processor runs them.

What Airflow 3 does (checked against 3.3.2): it *appends* the bundle's root to `sys.path`, so the standard
library and installed packages win over a bundle folder of the same name; it imports each DAG file as a standalone
module (no parent package), so a relative import in a DAG file fails; and only that bundle's root is on the path.
In a `main` deployment each repo is a folder of the bundle root (`<repo>/include/helpers.py` is
`<repo>.include.helpers`); in a `per-repo` deployment the repo's root is the bundle's (`include.helpers`) and no
other repo is importable.

Only what Airflow runs when it parses is checked: the module-level imports of the files it parses as DAG files
and, through them, of every module of the repo they import (a package's `__init__.py` included). Imports inside
functions run later, on a worker: their problems are warnings. Imports under `if TYPE_CHECKING:` or inside a `try`
that catches ImportError are allowed to fail.
"""

import sys
from collections.abc import Iterable, Mapping
from dataclasses import field
from keyword import iskeyword
from posixpath import dirname

from functions.shared.dag_bundles import MAIN_MODE, PER_REPO_MODE
from functions.shared.dag_source import DagSource, ImportedModule
from functions.shared.records import FrozenRecord, Record

AIRFLOW = "airflow"
INIT = "__init__.py"


def is_identifier(name: str) -> bool:
    return name.isidentifier() and not iskeyword(name)


def module_name(path: str) -> str | None:
    """The dotted name a `.py` file (or a folder) is imported by from the root it is under, None if it has none."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__" and path.endswith(INIT):
        parts = parts[:-1]
    return ".".join(parts) if parts and all(is_identifier(part) for part in parts) else None


class ModuleIndex:
    """The modules and packages a set of files makes importable from their root (every folder is a package)."""

    def __init__(self, paths: Iterable[str]):
        self.modules: dict[str, str] = {}  # module -> its file
        self.packages: dict[str, str | None] = {}  # package -> its __init__.py, None for a namespace package
        for path in paths:
            folders = path.split("/")[:-1]
            for depth in range(1, len(folders) + 1):
                name = module_name("/".join(folders[:depth]))
                if name:
                    self.packages.setdefault(name, None)
            name = module_name(path) if path.endswith(".py") else None
            if name and path.rsplit("/", 1)[-1] == INIT:
                self.packages[name] = path
            elif name:
                self.modules[name] = path

    def __contains__(self, name: str) -> bool:
        return name in self.modules or name in self.packages

    @property
    def top_level(self) -> set[str]:
        return {name.split(".")[0] for name in (*self.modules, *self.packages)}

    def files_run_by_import(self, name: str) -> list[str]:
        """The files importing `name` runs: each package's `__init__.py` on the way, then the module."""
        parts = name.split(".")
        files = [self.packages.get(".".join(parts[:depth])) for depth in range(1, len(parts) + 1)]
        return [file for file in (*files, self.modules.get(name)) if file]


class PythonFile(FrozenRecord):
    path: str  # in the repo
    source: DagSource
    dag_file: bool  # Airflow parses it as a DAG file (listed, and passes safe mode)


class BundleLayout(Record):
    """The bundle this repo's files will be in after the deploy."""

    mode: str
    repo: str
    own_paths: frozenset[str]  # every file of the request, in the repo
    other_repos: Mapping[str, Iterable[str]] = field(default_factory=dict)  # live repos of the deployment -> files
    # Top-level modules installed in the deployment (installedPackages), None when the configuration does not say.
    installed: frozenset[str] | None = None

    def __post_init__(self) -> None:
        self.root = f"{self.repo}/" if self.mode == MAIN_MODE else ""
        self.own = ModuleIndex(self.own_paths)
        bundle_paths = [self.root + path for path in self.own_paths]
        if self.mode == MAIN_MODE:
            bundle_paths += [f"{other}/{path}" for other, paths in self.other_repos.items() if other != self.repo
                             for path in paths]
        self.bundle = ModuleIndex(bundle_paths)

    def module_of(self, path: str) -> str | None:
        """The name a file of the repo is imported by in the bundle."""
        return module_name(self.root + path)

    def package_of(self, path: str) -> str | None:
        """The package a file of the repo is in when imported by its name ("" for a top-level module)."""
        name = self.module_of(path)
        if name is None or path.rsplit("/", 1)[-1] == INIT:
            return name
        return name.rpartition(".")[0]

    def shadowing(self, top: str) -> str | None:
        """What a top-level name resolves to before the bundle root, if anything."""
        if top == AIRFLOW:
            return "Airflow"
        if top in sys.stdlib_module_names:
            return "the standard library"
        if self.installed is not None and top in self.installed:
            return "an installed package (installedPackages)"
        return None


class _Finding(Record):
    problem: str | None = None
    follow: list[str] = field(default_factory=list)  # files of this repo the import runs


def _rewritten(imported: ImportedModule, module: str) -> str:
    return ImportedModule(module, imported.names).statement


def _repo_path_fix(layout: BundleLayout, imported: ImportedModule, module: str) -> str:
    """How to write an import of the repo's own `module` (relative to the repo root) in this layout."""
    if layout.mode == PER_REPO_MODE:
        return f"write `{_rewritten(imported, module)}`"
    folder = "in the deployment's main bundle each repo is a folder of the bundle root"
    if not is_identifier(layout.repo):
        return (
            f"{folder}, and the repo's name {layout.repo!r} is not a Python identifier, so its modules cannot be "
            f"imported by package path: rename the repo (for example "
            f"{''.join(c if c.isalnum() else '_' for c in layout.repo)!r}) or ship it to a Dag bundle of its own "
            f'("dagBundles": "{PER_REPO_MODE}")'
        )
    return f"{folder}: write `{_rewritten(imported, f'{layout.repo}.{module}')}`"


def _relative_target(package: list[str], imported: ImportedModule) -> str | None:
    """What `from <dots>module import ...` names from `package`, None when the dots go above it."""
    if imported.level - 1 > len(package):
        return None
    return ".".join([*package[:len(package) - imported.level + 1], *filter(None, [imported.module])]) or None


def _absolute(imported: ImportedModule, package: str | None) -> tuple[str | None, str]:
    """The absolute module a relative import names from `package` (None: in a DAG file), or why it has none."""
    if package is None:
        return None, "a relative import in a DAG file fails: Airflow imports DAG files as standalone modules, " \
                     "without a parent package"
    parts = package.split(".") if package else []
    target = _relative_target(parts, imported) if imported.level <= len(parts) else None
    if target is None:
        return None, f"a relative import that goes above the top-level package ({package or 'none'}) fails"
    return target, ""


def _resolve(layout: BundleLayout, path: str, imported: ImportedModule, module: str) -> _Finding:
    """Whether the absolute import of `module` (with `imported.names`) from repo file `path` resolves."""
    top = module.split(".")[0]
    submodules = [f"{module}.{name}" for name in imported.names if name != "*"]
    shadow = layout.shadowing(top)
    in_bundle = top in layout.bundle.top_level
    if shadow:
        hidden = [name for name in ([module] if module != top else []) + submodules if name in layout.bundle]
        if in_bundle and hidden:
            folder = f"repo {top!r}" if layout.mode == MAIN_MODE else f"the repo's top-level {top!r}"
            return _Finding(
                f"{hidden[0]} is in the bundle, but {top!r} is also {shadow}, which Python finds first (Airflow "
                f"appends the bundle root to the end of sys.path): rename {folder} so that its modules can be imported"
            )
        return _Finding()
    if in_bundle:
        if module not in layout.bundle:
            where = "this repo" if layout.mode == PER_REPO_MODE or top == layout.repo else f"repo {top!r} (live)"
            return _Finding(_named_by_repo(layout, imported, module, top) or
                            f"no module {module!r} in the bundle: {where} has no "
                            f"{module.replace('.', '/')}.py nor {module.replace('.', '/')}/")
        follow = layout.bundle.files_run_by_import(module)
        if module in layout.bundle.packages and layout.bundle.packages[module] is None:
            missing = [name for name in submodules if name not in layout.bundle]
            if missing:
                return _Finding(f"cannot import {missing[0].rsplit('.', 1)[-1]!r}: {module!r} is a folder without "
                                f"an __init__.py and has no module {missing[0].rsplit('.', 1)[-1]!r}")
        for name in submodules:
            follow += layout.bundle.files_run_by_import(name) if name in layout.bundle else []
        own = [file[len(layout.root):] for file in follow if file.startswith(layout.root)]
        return _Finding(follow=own)
    return _Finding(_outside_bundle(layout, path, imported, module, top))


def _named_by_repo(layout: BundleLayout, imported: ImportedModule, module: str, top: str) -> str | None:
    """Per-repo mode: the repo's own module imported by the repo's name, as a main bundle would need."""
    inner = module.removeprefix(f"{top}.")
    if layout.mode == PER_REPO_MODE and top == layout.repo and inner != module and inner in layout.own:
        return (f"in a Dag bundle of its own the repo's root is the bundle's root and {top!r} is no package there: "
                + _repo_path_fix(layout, imported, inner))
    return None


def _outside_bundle(layout: BundleLayout, path: str, imported: ImportedModule, module: str, top: str) -> str | None:
    """An import of a name the bundle does not have: one of the repo's modules written the wrong way, or a package."""
    if layout.mode == MAIN_MODE and module in layout.own:
        return f"{module!r} is this repo's {module.replace('.', '/')}: " + _repo_path_fix(layout, imported, module)
    if named_by_repo := _named_by_repo(layout, imported, module, top):
        return named_by_repo
    if layout.mode == PER_REPO_MODE and top in layout.other_repos:
        return (f"{top!r} is another repo of the deployment, which ships to a Dag bundle of its own: a per-repo "
                f"bundle sees only its own files (copy the module into this repo, or install it as a package)")
    folder = dirname(path)
    sibling = f"{folder.replace('/', '.')}.{module}" if folder else module
    if folder and sibling in layout.own:
        return (f"{module!r} is {sibling.replace('.', '/')} beside this file, but Airflow puts only the bundle root "
                f"on sys.path: " + _repo_path_fix(layout, imported, sibling))
    if layout.installed is not None:
        return (f"{top!r} is neither in the bundle, the standard library nor the deployment's installedPackages: "
                f"install its package in the deployment's image and list {top!r} in installedPackages (cdk.json)")
    return None


class ImportCheck(Record):
    problems: list[str]
    warnings: list[str]
    reached: set[str]  # the repo's files Airflow runs: its DAG files and every module of the repo they import


def import_problems(layout: BundleLayout, files: Mapping[str, PythonFile]) -> ImportCheck:
    """Problems and warnings of the imports Airflow will run, each naming the file, line and import, with the fix.

    `files`: the repo's `.py` files that compile.
    """
    problems: dict[str, None] = {}
    warnings: dict[str, None] = {}
    reached: set[str] = set()
    # (file, the package it is imported in; None: as a DAG file, standalone)
    pending: list[tuple[str, str | None]] = [(path, None) for path, file in files.items() if file.dag_file]
    done: set[tuple[str, str | None]] = set()
    while pending:
        path, package = pending.pop()
        reached.add(path)
        if (path, package) in done or path not in files:
            continue
        done.add((path, package))
        for imported in files[path].source.imports:
            if imported.guarded:
                continue
            finding = _check(layout, path, imported, package)
            if finding.problem:
                where = f"{path} line {imported.line}: `{imported.statement}`"
                if imported.at_import:
                    problems[f"{where}: {finding.problem}"] = None
                else:
                    warnings[f"{where} (in a function, runs when the task runs): {finding.problem}"] = None
            if imported.at_import:
                pending += [(file, layout.package_of(file)) for file in finding.follow]
    return ImportCheck(list(problems), list(warnings), reached)


def _check(layout: BundleLayout, path: str, imported: ImportedModule, package: str | None) -> _Finding:
    if not imported.level:
        return _resolve(layout, path, imported, imported.module)
    module, why_not = _absolute(imported, package)
    if module is not None:
        return _resolve(layout, path, imported, module)
    meant = _meant(layout, path, imported) if package is None else None
    return _Finding(why_not + (f": write `{_rewritten(imported, meant)}`" if meant else ""))


def _meant(layout: BundleLayout, path: str, imported: ImportedModule) -> str | None:
    """The absolute module a relative import in a DAG file means: counted from the file's own folder."""
    folder_path = (layout.root + dirname(path)).strip("/")
    folder = module_name(folder_path) if folder_path else ""
    if folder is None:
        return None
    return _relative_target(folder.split(".") if folder else [], imported)
