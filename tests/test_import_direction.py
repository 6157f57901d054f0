"""The direction of imports inside nativeimport, held against one table of allowed arrows.

Every import statement in ``nativeimport/`` and ``compilers/`` is parsed, the
ones inside functions included (a lazy import is still an arrow). The test
fails on an arrow the table does not list, on any cycle among the imports
that run (those under ``if TYPE_CHECKING:`` never do), and on a private name
(``_name``) imported from another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
PUBLIC_API = {"driver", "interface", "dwarf", "errors"}

# Module -> the modules of ours it may import. Short names: "x" is nativeimport.x, "compilers.x" a driver.
ALLOWED: dict[str, set[str]] = {
    # leaves
    "_version": set(),
    "errors": set(),
    "_frozen": set(),  # frozen value classes without dataclasses (a new module's build imports no dataclasses)
    "interface": {"_frozen"},
    "_records": set(),
    "_locks": set(),
    "_doc_comments": set(),
    "_fast_c": {"_fast_callbacks", "_fast_records"},
    "_fast_spelling": {"interface"},  # how the wrapper's C spells types, bounds, literals and results
    "_fast_callbacks": {"_fast_spelling", "interface"},  # the wrapper's callback trampolines (C and their generation)
    "_fast_records": {"_fast_spelling", "interface"},  # the wrapper's struct and union types (C and their generation)
    "settings": {"errors"},
    # the public driver API (compilers/* may import only these four)
    "_dwarf_lite": set(),  # the common case of a library's DWARF, read without pyelftools
    "dwarf": {"_doc_comments", "_dwarf_lite", "errors", "interface"},
    "_child": set(),
    "_log": set(),  # the package's logger, importing logging only when a message can go somewhere
    "_early": {"_child", "_entry", "_records"},  # a new source's compiler started before the build is imported
    "_tool_versions": {"_child", "_records"},  # what tools print for --version, remembered during a build
    "driver": {"_child", "_doc_comments", "_early", "_frozen", "_log", "_tool_versions", "dwarf", "errors",
               "interface"},
    # the cache: its layout, its stored artefacts, its contents
    "_root": {"_records", "errors"},  # the cache root: where, its mark, whether it is safe
    "_entry": {"_root", "_records", "errors"},
    "_stored": {"_entry", "_records"},
    "_cache": {"_build_settings", "_entry", "_frozen", "_locks", "_log", "_records", "_registry", "errors",
               "settings"},
    # a source's own build settings (its comment, nativeimport.toml), read by a build and by the finder
    "_build_settings": {"_records", "driver", "errors"},
    # drivers known without importing them
    "_registry": {"_entry", "_records", "_version", "driver", "errors", "settings"},
    # binders: generating (at build) and loading (at import)
    "_cffi_check": {"interface"},  # the Interface held against what cffi can do, at build
    "_bind_cffi": {"_cffi_check", "errors", "interface"},
    "_cffi_callbacks": set(),  # function pointers, imported by bindings that have them
    "_cffi_runtime": {"_cffi_callbacks", "_entry", "_fast_runtime", "_stored"},
    "_bind_fast": {"_child", "_entry", "_fast_c", "_fast_callbacks", "_fast_records", "_fast_spelling", "_log",
                   "_records", "interface"},
    "_fast_runtime": {"_entry", "_stored"},
    # a miss
    "_build": {"_bind_cffi", "_bind_fast", "_cffi_check", "_build_settings", "_cache", "_child", "_early", "_entry", "_log", "_progress", "_records",
               "_registry", "_tool_versions", "_version", "driver", "dwarf", "errors", "interface", "settings"},
    "_progress": set(),
    # an import: find, then load
    "_loader": {"_build", "_cffi_runtime", "_early", "_entry", "_fast_runtime", "_registry", "errors", "settings"},
    "_finder": {"_build_settings", "_loader", "_registry"},
    # a module shipped prebuilt in a wheel: bound from beside its .py, read only
    "_shipped": {"_entry", "_loader", "_version", "errors", "settings"},
    # wheels: a package's native modules, the archive, the PEP 517 backend on top
    "_package": {"_build_settings", "_entry", "_registry", "_stored", "_version", "interface"},
    "_wheel": set(),
    "build_meta": {"_api", "_build_settings", "_entry", "_finder", "_package", "_version", "_wheel", "errors"},
    # crossing processes: pickling by content (enabled by install() and load()), resolving on the other side,
    # entries as archives, and the engines' own shipping mechanisms on top
    "_pickling": {"_build_settings", "_entry", "_loader", "_records", "_resolve", "settings"},
    "_resolve": {"_archive", "_entry", "_finder", "_loader", "_locks", "_records", "_stored", "errors", "settings"},
    "_archive": {"_entry", "_loader", "_records", "errors"},
    "dask": {"_archive", "_entry", "_pickling", "_resolve", "settings"},
    "ray": {"_archive", "_entry", "_pickling", "_resolve", "settings"},
    # the public functions, and what sits on top of them (nothing imports these but the package)
    "_api": {"_build_settings", "_entry", "_finder", "_loader", "_pickling", "_registry", "_shipped", "errors",
             "settings"},
    "__init__": {"_api", "_version", "errors", "ipython"},
    "auto": {"_api"},
    "__main__": {"_cli"},
    "_cli": {"_api", "_archive", "_bind_fast", "_cache", "_entry", "_finder", "_package", "_records", "_version",
             "errors", "interface", "settings"},
    "ipython": {"_api", "_entry", "_finder", "_loader", "_records", "errors", "settings"},
    # the drivers shipped with nativeimport, exactly as a third party's
    "compilers.__init__": set(),
    "compilers._names": {"interface"},
    "compilers._macros": {"driver", "errors"},
    "compilers.c": {"compilers._macros", "driver", "errors", "interface"},
    "compilers.cpp": {"compilers.c", "driver", "errors", "interface"},
    "compilers.fortran": {"driver", "dwarf", "errors", "interface"},
    "compilers.rust": {"compilers._names", "driver", "dwarf", "errors", "interface"},
    "compilers.zig": {"compilers._names", "driver", "errors", "interface"},
}


class Import:
    """One imported name: ``from <module> import <name>``, or ``import <module>`` (name None)."""

    def __init__(self, module: str, name: str | None, type_only: bool) -> None:
        self.module = module
        self.name = name
        self.type_only = type_only


def _short(dotted: str) -> str | None:
    """``nativeimport.x`` -> ``x``; ``nativeimport.compilers.c`` -> ``compilers.c``; the package -> ``__init__``."""
    if dotted == "nativeimport":
        return "__init__"
    if dotted == "nativeimport.compilers":
        return "compilers.__init__"
    if dotted.startswith("nativeimport."):
        return dotted[len("nativeimport."):]
    return None


def _module_of(path: Path) -> str:
    prefix = "compilers." if path.parent.name == "compilers" else ""
    return prefix + path.stem


def _sources() -> dict[str, Path]:
    paths = [*(ROOT / "nativeimport").glob("*.py"), *(ROOT / "compilers").glob("*.py")]
    return {_module_of(path): path for path in paths}


def _imports(path: Path) -> list[Import]:
    package = "nativeimport.compilers" if path.parent.name == "compilers" else "nativeimport"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            type_only.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            found.extend(Import(module, alias.name, id(node) in type_only) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(Import(alias.name, None, id(node) in type_only) for alias in node.names)
    return found


def _arrows(sources: dict[str, Path]) -> dict[str, list[tuple[str, Import]]]:
    """Each module's imports of our own modules (``from . import x`` resolved to the submodule x)."""
    arrows: dict[str, list[tuple[str, Import]]] = {}
    for module, path in sources.items():
        arrows[module] = []
        for imported in _imports(path):
            target = _short(imported.module)
            if target is None:
                continue
            submodule = _short(f"{imported.module}.{imported.name}") if imported.name else None
            if submodule is not None and submodule in sources:
                target = submodule
            arrows[module].append((target, imported))
    return arrows


def test_every_module_is_in_the_table() -> None:
    assert set(_sources()) == set(ALLOWED), "add the new module to ALLOWED (and its arrows), or remove the stale row"


def test_every_arrow_is_allowed() -> None:
    wrong = sorted(f"{module} -> {target}" for module, targets in _arrows(_sources()).items()
                   for target, _ in targets if target != module and target not in ALLOWED.get(module, set()))
    assert wrong == [], "imports not in the table of allowed arrows"


def test_drivers_reach_the_core_only_through_the_public_api() -> None:
    for module, targets in ALLOWED.items():
        if module.startswith("compilers."):
            assert {t for t in targets if not t.startswith("compilers.")} <= PUBLIC_API, module
        else:
            assert not any(t.startswith("compilers") for t in targets), f"{module} imports a driver by name"


def test_nothing_inside_imports_the_package_init() -> None:
    importers = sorted(module for module, targets in _arrows(_sources()).items()
                       if any(target == "__init__" for target, _ in targets))
    assert importers == []


def test_no_private_name_is_imported_across_modules() -> None:
    sources = _sources()
    private = sorted(f"{module}: {imported.name} from {target}" for module, targets in _arrows(sources).items()
                     for target, imported in targets
                     if imported.name and imported.name.startswith("_") and not imported.name.startswith("__")
                     and target != module and not (target != "__init__" and f"{target}" in sources
                                                   and imported.name == target.rpartition(".")[2]))
    assert private == []


def test_there_is_no_import_cycle() -> None:
    graph = {module: {target for target, imported in targets if not imported.type_only and target != module}
             for module, targets in _arrows(_sources()).items()}
    cycles = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*trail[trail.index(target):], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    # The parser must see lazy imports and resolve relative ones, or every check above passes vacuously.
    sample = tmp_path / "sample.py"
    sample.write_text("from . import _build\nfrom ._entry import _hidden\n\n\ndef f():\n    from .driver import Driver\n"
                      "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from ._loader import NativeLoader\n")
    found = {(i.module, i.name, i.type_only) for i in _imports(sample)}
    assert found == {("nativeimport", "_build", False), ("nativeimport._entry", "_hidden", False),
                     ("nativeimport.driver", "Driver", False), ("nativeimport._loader", "NativeLoader", True)}
