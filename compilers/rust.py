"""The Rust driver: ``.rs`` files built by rustc, and Cargo crate directories built by cargo.

Exports are ``#[no_mangle] extern "C"`` functions. Their signatures come from
the library's DWARF, corrected by the source where rustc's debug info loses
something: ``c_char`` is recorded as ``i8`` (so a ``*const c_char`` result
would not be a string), and LLVM merges identical functions (``add_u64``
becomes an alias of ``add_i64`` with no debug info of its own). Types are
shown with their C names, since the C ABI is what Python sees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from nativeimport.driver import (
    C_SEARCH_ENVIRONMENT,
    BuildRequest,
    BuildResult,
    BuildSettings,
    Driver,
    Toolchain,
    doc_comment_above,
    find_program,
    parse_depfile,
    run_tool,
    tool_version,
)
from nativeimport.dwarf import read_interface
from nativeimport.errors import CompileError, ToolchainNotFound
from nativeimport.interface import CType, Function, Interface, Param, Struct

from ._names import primitive

__all__ = ["RustDriver", "c_layout_types", "rust_exports"]

INSTALL_HINT = "Install Rust with rustup (https://rustup.rs), or set RUSTC (and CARGO) to the compiler."
EDITION = "2021"




@dataclasses.dataclass(frozen=True)
class RustSignature:
    """An ``extern "C" fn`` as written in the source."""

    name: str
    params: tuple[tuple[str, str], ...]
    result: str
    path: Path
    line: int


class RustDriver(Driver):
    """Rust: single ``.rs`` files (rustc) and crate directories with a ``Cargo.toml`` (cargo)."""

    name = "rust"
    suffixes = (".rs",)
    directory_marker = "Cargo.toml"
    environment = ("RUSTC", "CARGO", "RUSTFLAGS")
    # rustup picks the compiler by RUSTUP_TOOLCHAIN; cargo reads its config and registry under CARGO_HOME and
    # flags from CARGO_*; rustc links through cc, which reads C_SEARCH_ENVIRONMENT's LIBRARY_PATH.
    search_environment = (*C_SEARCH_ENVIRONMENT, "RUSTUP_TOOLCHAIN", "RUSTUP_HOME", "CARGO_HOME",
                          "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET", "RUSTC_WRAPPER",
                          "RUSTC_BOOTSTRAP")

    def find_toolchain(self) -> Toolchain:
        command = find_program("RUSTC", ["rustc"], install_hint=INSTALL_HINT, language="Rust")
        return Toolchain("rustc", command, tool_version(command))

    def flags(self) -> tuple[str, ...]:
        user = shlex.split(os.environ.get("RUSTFLAGS", ""))
        edition = () if any(flag.startswith("--edition") for flag in user) else ("--edition", EDITION)
        return ("--crate-type", "cdylib", "-C", "opt-level=3", "-g", *edition, *user)

    def fingerprint(self) -> str:
        cargo = shutil.which(os.environ.get("CARGO") or "cargo")
        cargo_version = tool_version([cargo]) if cargo else "no cargo"
        return f"{super().fingerprint()}\n{cargo_version}"

    def tools(self) -> list[Toolchain]:
        found = [self.toolchain()]
        try:
            cargo = find_program("CARGO", ["cargo"], install_hint=INSTALL_HINT, language="Cargo")
        except ToolchainNotFound:
            return found  # single files still build; doctor shows cargo missing by its absence
        return [*found, Toolchain("cargo", cargo, tool_version(cargo))]

    def read_source(self, path: Path) -> bytes:
        if path.is_dir():  # a crate: its manifest identifies it; every other file is a dependency
            return (path / "Cargo.toml").read_bytes()
        return path.read_bytes()

    def compile(self, request: BuildRequest) -> BuildResult:
        if request.source.is_dir():
            return self._cargo(request)
        library = request.output_dir / f"lib{request.library_name}.so"
        depfile = request.output_dir / "deps.d"
        command = [*request.toolchain.command, *self.flags(), *_rustc_settings(request), "--crate-name",
                   request.library_name, f"--emit=link={library},dep-info={depfile}", str(request.source)]
        output = run_tool(command, cwd=request.source.parent, timeout=request.timeout, what="rustc")
        dependencies = [request.source.parent / p for p in parse_depfile(depfile.read_text(errors="replace"))]
        source = request.source.resolve()
        return BuildResult(library, tuple(p for p in dependencies if p.resolve() != source), diagnostics=output)

    def _cargo(self, request: BuildRequest) -> BuildResult:
        if request.settings != BuildSettings():
            raise CompileError(f"{request.source}: a Cargo crate takes its build settings from Cargo.toml and "
                               "build.rs, not from nativeimport settings")
        cargo = find_program("CARGO", ["cargo"], install_hint=INSTALL_HINT, language="Cargo")
        # Cargo writes Cargo.lock beside the manifest: build a private copy, never touching the user's folder.
        work = request.scratch_dir / "cargo" / hashlib.sha256(str(request.source).encode()).hexdigest()[:16]
        crate = work / "crate"
        shutil.rmtree(crate, ignore_errors=True)
        shutil.copytree(request.source, crate, ignore=shutil.ignore_patterns("target", ".git"))
        env = {**os.environ, "CARGO_PROFILE_RELEASE_DEBUG": "2", "CARGO_TARGET_DIR": str(work / "target"),
               "CARGO_TERM_COLOR": "never"}
        if os.environ.get("RUSTC"):
            env["RUSTC"] = request.toolchain.path
        command = [*cargo, "build", "--release", "--offline", "--lib", "--message-format=json-render-diagnostics",
                   "--manifest-path", str(crate / "Cargo.toml")]
        output = run_tool(command, cwd=crate, timeout=request.timeout, env=env, what="cargo")
        library = None
        diagnostics = []
        for line in output.splitlines():
            if not line.startswith("{"):
                diagnostics.append(line)
                continue
            message = json.loads(line)
            if message.get("reason") == "compiler-artifact" and "cdylib" in message["target"]["kind"]:
                library = next((Path(f) for f in message["filenames"] if f.endswith(".so")), None)
        if library is None:
            raise CompileError(f"{request.source / 'Cargo.toml'} builds no cdylib; add [lib] crate-type = [\"cdylib\"]",
                               command=command)
        target = request.output_dir / library.name
        shutil.copy2(library, target)
        return BuildResult(target, tuple(self._crate_files(crate, library, request.source)),
                           diagnostics="\n".join(diagnostics))

    def _crate_files(self, crate: Path, library: Path, original: Path) -> Iterable[Path]:
        """The crate's sources (from cargo's dep-info) and Cargo files, as paths in the user's folder."""
        depinfo = library.with_suffix(".d")
        files = {crate / "Cargo.toml"} | ({crate / "Cargo.lock"} if (original / "Cargo.lock").exists() else set())
        if depinfo.exists():
            files |= {Path(p) for p in parse_depfile(depinfo.read_text(errors="replace"))}
        for path in sorted(files):
            try:
                yield original / path.relative_to(crate)
            except ValueError:
                yield path  # outside the crate (a path dependency): tracked where it is

    def describe(self, request: BuildRequest, result: BuildResult) -> Interface:
        interface = read_interface(result.library, exported_from=request.source)
        sources = [p for p in (request.source, *result.dependencies) if p.suffix == ".rs" and p.is_file()]
        return reconcile(interface, rust_exports(sources), c_layout_types(sources))


def rust_exports(paths: Iterable[Path]) -> dict[str, RustSignature]:
    """Every ``extern "C" fn`` declared in ``paths``, by name."""
    found: dict[str, RustSignature] = {}
    for path in paths:
        text = _without_comments(path.read_text(encoding="utf-8", errors="replace"))
        for match in re.finditer(r'\bextern\s+"C"\s+fn\s+(\w+)\s*\(', text):
            close = _closing_paren(text, match.end() - 1)
            if close < 0:
                continue
            params = []
            for part in _split_top_level(text[match.end() : close]):
                name, _, rust_type = part.partition(":")
                if rust_type:
                    params.append((name.strip().removeprefix("mut ").strip(), " ".join(rust_type.split())))
            rest = re.match(r"\s*->\s*([^{;]+?)\s*(?:where\b|\{|;)", text[close + 1 :])
            result = " ".join(rest.group(1).split()) if rest else "()"
            line = text.count("\n", 0, match.start()) + 1
            found[match.group(1)] = RustSignature(match.group(1), tuple(params), result, path, line)
    return found


def c_layout_types(paths: Iterable[Path]) -> set[str]:
    """The types ``paths`` declare with a C layout (``#[repr(C)]``, ``#[repr(u8)]``, ...): the others are
    Rust's to arrange, so a pointer to one is an opaque handle."""
    found: set[str] = set()
    for path in paths:
        text = _without_comments(path.read_text(encoding="utf-8", errors="replace"))
        found |= {m.group(1) for m in _REPR.finditer(text)}
    return found


# `#[repr(C)]` (or an integer repr, or `C, packed`...), other attributes, then the type's name.
_REPR = re.compile(r"#\[repr\((?:C|[iu](?:8|16|32|64|size))\b[^)]*\)\]\s*(?:#\[[^\]]*\]\s*)*"
                   r"(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|union)\s+(\w+)")


@dataclasses.dataclass
class _Types:
    """What a source type name can be: a described struct or enum, a C-layout type, else (behind a pointer) a handle."""

    structs: set[str]
    enums: dict[str, CType]
    c_layout: Optional[set[str]]  # None: unknown (every described struct counts)
    handles: set[str] = dataclasses.field(default_factory=set)

    def has_c_layout(self, name: str) -> bool:
        return self.c_layout is None or name in self.c_layout


def reconcile(interface: Interface, declared: dict[str, RustSignature],
              c_layout: Optional[set[str]] = None) -> Interface:
    """Correct the DWARF interface with what the source declares, recover merged functions, and make a
    pointer to a type without a C layout an opaque handle (``*mut Db`` for a plain ``struct Db``)."""
    types = _Types({s.name for s in interface.structs}, {e.name: e.representation for e in interface.enums if e.name},
                   c_layout)
    functions = []
    for function in interface.functions:
        signature = declared.get(function.name)
        from_source = _from_source(signature, types, function.doc) if signature else None
        if from_source is not None and _abi(from_source) == _abi(function):
            functions.append(from_source)
        else:
            functions.append(_respelled(function))
    skipped = []
    for skip in interface.skipped:
        signature = declared.get(skip.name)
        merged = "no debug info" in skip.reason
        before = set(types.handles)
        recovered = _from_source(signature, types, None) if signature is not None else None
        if recovered is not None and (merged or _uses_handle(recovered, types.handles)):
            functions.append(recovered)  # merged by LLVM, or left out for what lies behind a pointer
        else:
            types.handles = before
            skipped.append(skip)
    functions.sort(key=lambda f: f.name)
    return dataclasses.replace(interface, functions=tuple(functions), structs=_structs(interface, functions, types),
                               skipped=tuple(skipped))


def _uses_handle(function: Function, handles: set[str]) -> bool:
    def behind(ctype: Optional[CType]) -> bool:
        while ctype is not None:
            if ctype.kind == "struct" and ctype.name in handles:
                return True
            ctype = ctype.pointee
        return False

    return behind(function.result) or any(behind(p.type) for p in function.params)


def _structs(interface: Interface, functions: list[Function], types: _Types) -> tuple[Struct, ...]:
    """The structs the bound functions reach (Rust's own, like ``NonNull<u8>``, fall away); handles opaque."""
    described = {s.name: s for s in interface.structs}
    wanted: list[str] = []

    def reach(ctype: Optional[CType]) -> None:
        while ctype is not None:
            if ctype.kind == "struct" and ctype.name not in wanted:
                wanted.append(ctype.name)
                struct = described.get(ctype.name)
                if ctype.name not in types.handles and struct is not None:
                    for field in struct.fields or ():
                        reach(field.type)
            ctype = ctype.pointee

    for function in functions:
        reach(function.result)
        for param in function.params:
            reach(param.type)
    wanted += [s.name for s in interface.structs if s.name in (types.c_layout or ()) and s.name not in wanted]
    kept = []
    for name in sorted(wanted):
        if name in types.handles or name not in described:
            kept.append(Struct(name, None))
        else:
            kept.append(described[name])
    return tuple(kept)


def _from_source(signature: RustSignature, types: _Types, doc: str | None) -> Function | None:
    try:
        params = tuple(Param(name, _rust_type(text, types)) for name, text in signature.params)
        result = _rust_type(signature.result, types)
    except ValueError:
        return None
    if doc is None:
        doc = doc_comment_above(signature.path, signature.line)
    return Function(signature.name, result, params, doc)


def _as_pointer(text: str) -> Optional[str]:
    """``Box<T>``, ``NonNull<T>`` and their ``Option``s, and ``Option<&T>``: as the raw pointer the C ABI sees."""
    optional = re.fullmatch(r"Option\s*<\s*(.+?)\s*>", text)
    inner = optional.group(1) if optional else text
    owned = re.fullmatch(r"(?:Box|NonNull)\s*<\s*(.+?)\s*>", inner)
    if owned:
        return f"*mut {owned.group(1)}"
    return inner if optional and inner.startswith("&") else None


def _rust_type(text: str, types: _Types) -> CType:
    text = text.strip()
    text = _as_pointer(text) or text
    for prefix, const in (("*const ", True), ("*mut ", False), ("&mut ", False), ("&", True)):
        if text.startswith(prefix):
            return _pointer(text[len(prefix) :], const, types)
    name = text.rsplit("::", 1)[-1]
    if name in ("()", ""):
        return CType.void()
    scalar = primitive(name)
    if scalar is not None:
        return scalar
    if name in types.structs and types.has_c_layout(name):
        return CType.struct(name)
    if name in types.enums:
        return CType.enum(name, types.enums[name])
    raise ValueError(text)


def _pointer(inner: str, const: bool, types: _Types) -> CType:
    inner = inner.strip()
    base = inner.rsplit("::", 1)[-1]
    if base == "c_char":
        return CType.pointer(CType.char(), const=const)
    if base == "c_void":
        return CType.pointer(CType.void(), const=const)
    try:
        return CType.pointer(_rust_type(inner, types), const=const)
    except ValueError:
        if not base.isidentifier() or base in _NOT_HANDLES:
            raise  # a slice, a str, a generic or a trait object: not one address
    types.handles.add(base)  # a type Rust lays out as it likes, or one the debug info could not describe
    return CType.pointer(CType.struct(base), const=const)


# Identifiers behind which a pointer is not a plain address (or which C would read as its own type).
_NOT_HANDLES = frozenset({"str", "dyn", "Self", "FILE", "int", "char", "void", "float", "double", "long", "short"})


def _respelled(function: Function) -> Function:
    def respell(ctype: CType) -> CType:
        if ctype.kind == "pointer" and ctype.pointee is not None:
            return dataclasses.replace(ctype, spelling="", pointee=respell(ctype.pointee))
        if ctype.kind in ("int", "float"):
            return dataclasses.replace(ctype, spelling=ctype.name)
        if ctype.kind == "bool":
            return dataclasses.replace(ctype, spelling="bool")
        return ctype

    params = tuple(Param(p.name, respell(p.type)) for p in function.params)
    return Function(function.name, respell(function.result), params, function.doc)


def _abi(function: Function) -> list[tuple[str, int, str]]:
    """What the calling convention sees: kinds and sizes, every pointer alike."""
    def shape(ctype: CType) -> tuple[str, int, str]:
        if ctype.kind == "pointer":
            return ("pointer", 8, "")
        if ctype.kind == "enum":
            return ("int", ctype.size, "")
        return (ctype.kind, ctype.size, ctype.name if ctype.kind == "struct" else "")

    return [shape(function.result)] + [shape(p.type) for p in function.params]


def _without_comments(text: str) -> str:
    # Blank out comments but keep every newline, so line numbers still match the file.
    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return re.sub(r"//[^\n]*|/\*.*?\*/", blank, text, flags=re.S)


def _closing_paren(text: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "(<[":
            depth += 1
        elif char in ")>]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _rustc_settings(request: BuildRequest) -> list[str]:
    """The source's build settings as rustc options; what rustc cannot take is an error, not ignored."""
    settings = request.settings
    unsupported = [name for name, value in (("sources", settings.sources), ("include-dirs", settings.include_dirs),
                                            ("define", settings.defines)) if value]
    if unsupported:
        raise CompileError(f"{request.source}: a Rust module cannot use {', '.join(unsupported)} (modules are "
                           "found through `mod`; use `flags = [\"--cfg\", \"name\"]` for conditional code)")
    options = [*(f"-L{d}" for d in settings.library_dirs), *(f"-l{name}" for name in settings.libraries),
               *settings.flags]
    for flag in settings.link_flags:
        options += ["-C", f"link-arg={flag}"]
    return options
