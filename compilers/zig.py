"""The Zig driver: ``.zig`` files built by ``zig build-lib`` from the ``ziglang`` wheel (or ``$ZIG``).

Zig's DWARF is wrong in release builds (unused parameters dropped, large
struct results recorded as ``void``) and ``-femit-h`` is broken, so the
interface is read from the source instead: ``export fn`` declarations,
``extern struct`` and ``enum(T)`` types, with their ``///`` doc comments.
nativeimport then checks it against the library's exported symbols.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from nativeimport.driver import (
    C_SEARCH_ENVIRONMENT,
    BuildRequest,
    BuildResult,
    Driver,
    Toolchain,
    doc_comment_above,
    find_program,
    run_tool,
    tool_version,
    ziglang_executable,
)
from nativeimport.errors import CompileError, ToolchainNotFound
from nativeimport.interface import CType, Enum, Field, Function, Interface, Param, Skipped, Struct

from ._names import INTEGERS, primitive

__all__ = ["ZigDriver", "read_zig_interface"]

INSTALL_HINT = "Install Zig with `pip install nativeimport[zig]` (the ziglang wheel), or set ZIG to a zig binary."

_TOKEN = re.compile(r"""\s+|//[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|@?[A-Za-z_]\w*|\d[\w.]*|\[\*c\]|\S""")


class ZigDriver(Driver):
    """Zig: ``export fn`` functions, ``extern struct`` and ``enum(T)`` types."""

    name = "zig"
    suffixes = (".zig",)
    environment = ("ZIG", "ZIGFLAGS")
    # ZIG_LIB_DIR replaces the standard library (and the libc headers) every build reads.
    search_environment = (*C_SEARCH_ENVIRONMENT, "ZIG_LIB_DIR")

    def find_toolchain(self) -> Toolchain:
        if os.environ.get("ZIG", "").strip():
            command = find_program("ZIG", [], install_hint=INSTALL_HINT, language="Zig")
        else:
            zig = ziglang_executable()
            if zig is None:
                raise ToolchainNotFound(f"no Zig toolchain found. {INSTALL_HINT}")
            command = (zig,)
        return Toolchain("zig", command, tool_version(command, "version"))

    def flags(self) -> tuple[str, ...]:
        user = shlex.split(os.environ.get("ZIGFLAGS", ""))
        return ("build-lib", "-dynamic", "-O", "ReleaseFast", "-fno-emit-h", *user)

    def compile(self, request: BuildRequest) -> BuildResult:
        library = request.output_dir / f"lib{request.library_name}.so"
        caches = request.scratch_dir
        settings = request.settings
        # C sources build beside the Zig one (zig compiles C itself); macros and include directories are theirs.
        c_sources = [str(path) for path in settings.sources if path.suffix == ".c"]
        others = [path.name for path in settings.sources if path.suffix != ".c"]
        if others:
            raise CompileError(f"{request.source}: `sources` may list C files for a Zig module (Zig files are "
                               f"found through @import); not {', '.join(others)}")
        linking = [*(f"-L{d}" for d in settings.library_dirs), *(f"-l{name}" for name in settings.libraries)]
        if c_sources or linking:
            linking.append("-lc")
        command = [*request.toolchain.command, *self.flags(), *settings.flags, f"-femit-bin={library}",
                   "--name", request.library_name, "--cache-dir", str(caches / "local"),
                   "--global-cache-dir", str(caches / "global"),
                   *(f"-I{d}" for d in settings.include_dirs), *(f"-D{d}" for d in settings.defines),
                   str(request.source), *c_sources, *linking, *settings.link_flags]
        env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(caches / "global"),
               "ZIG_LOCAL_CACHE_DIR": str(caches / "local")}
        output = run_tool(command, cwd=request.source.parent, timeout=request.timeout, env=env, what="zig build-lib")
        imports = (*local_imports(request.source), *settings.sources)
        try:
            interface = read_zig_interface([request.source, *imports])
        except ValueError as exc:
            raise CompileError(f"{request.source}: cannot read the exported declarations: {exc}") from None
        return BuildResult(library, imports, diagnostics=output, interface=interface)


def local_imports(source: Path) -> Iterator[Path]:
    """Files reached through ``@import("x.zig")`` from ``source``, transitively."""
    seen = {source.resolve()}
    pending = [source]
    while pending:
        current = pending.pop()
        text = current.read_text(encoding="utf-8", errors="replace")
        for name in re.findall(r'@import\(\s*"([^"]+\.zig)"\s*\)', text):
            path = (current.parent / name).resolve()
            if path not in seen and path.is_file():
                seen.add(path)
                pending.append(path)
                yield path


@dataclasses.dataclass
class _Tokens:
    items: list[tuple[str, int]]
    index: int = 0

    def peek(self, offset: int = 0) -> str:
        at = self.index + offset
        return self.items[at][0] if at < len(self.items) else ""

    def line(self) -> int:
        return self.items[min(self.index, len(self.items) - 1)][1]

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise ValueError(f"line {self.line()}: expected {expected!r}, found {token!r}")
        self.index += 1
        return token

    def skip_balanced(self) -> None:
        """Skip from an opening bracket to its match."""
        pairs = {"(": ")", "{": "}", "[": "]"}
        closing = pairs[self.take()]
        depth = 1
        while depth and self.index < len(self.items):
            token = self.take()
            if token in pairs:
                depth += 1
            elif token in pairs.values():
                depth -= 1
        del closing


def _tokenize(text: str) -> _Tokens:
    items = []
    line = 1
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if not token.isspace() and not token.startswith("//"):
            items.append((token, line))
        line += token.count("\n")
    return _Tokens(items)


@dataclasses.dataclass
class _Declarations:
    structs: dict[str, list[tuple[str, _Tokens]]] = dataclasses.field(default_factory=dict)
    enums: dict[str, tuple[str, list[tuple[str, int]], int, Path]] = dataclasses.field(default_factory=dict)
    functions: list[tuple[str, list[tuple[str, _Tokens]], _Tokens, int, Path]] = dataclasses.field(default_factory=list)
    struct_lines: dict[str, tuple[int, Path]] = dataclasses.field(default_factory=dict)


def read_zig_interface(paths: list[Path]) -> Interface:
    """The Interface of the ``export fn``s in ``paths[0]``; types may come from any of ``paths``."""
    declarations = _Declarations()
    for index, path in enumerate(paths):
        _scan(_tokenize(path.read_text(encoding="utf-8", errors="replace")), path, declarations, exports=index == 0)
    enums = {}
    for name, (representation, members, line, path) in declarations.enums.items():
        if representation not in INTEGERS:
            continue
        canonical, spelling = INTEGERS[representation]
        enums[name] = Enum(name, CType.integer(canonical, spelling), tuple(members), doc_comment_above(path, line))
    structs: dict[str, Struct] = {}
    skipped = []
    for name, fields in declarations.structs.items():
        try:
            struct_fields = tuple(Field(field, _type(tokens, declarations, enums)) for field, tokens in fields)
        except ValueError:
            continue
        line, path = declarations.struct_lines[name]
        structs[name] = Struct(name, struct_fields, 0, doc_comment_above(path, line))
    functions = []
    for name, params, result, line, path in declarations.functions:
        try:
            function = Function(
                name,
                _type(result, declarations, enums, structs),
                tuple(Param(p, _type(t, declarations, enums, structs)) for p, t in params),
                doc_comment_above(path, line),
            )
        except ValueError as why:
            skipped.append(Skipped(name, f"its signature uses {why}, which has no exact C binding"))
            continue
        functions.append(function)
    used = _used_structs(functions, structs)
    return Interface(tuple(sorted(functions, key=lambda f: f.name)),
                     tuple(structs[n] for n in sorted(used)), tuple(enums[n] for n in sorted(enums)), tuple(skipped))


def _scan(tokens: _Tokens, path: Path, found: _Declarations, exports: bool) -> None:
    while tokens.peek():
        token = tokens.peek()
        if token in ("{", "(", "["):
            tokens.skip_balanced()
        elif token == "export" and tokens.peek(1) == "fn" and exports:
            line = tokens.line()
            tokens.take()
            tokens.take()
            found.functions.append((*_function(tokens), line, path))
        elif token == "const" and tokens.peek(2) == "=":
            line = tokens.line()
            tokens.take()
            name = tokens.take()
            tokens.take("=")
            if tokens.peek() == "extern" and tokens.peek(1) == "struct":
                tokens.take()
                tokens.take()
                found.structs[name] = _struct_fields(tokens)
                found.struct_lines[name] = (line, path)
            elif tokens.peek() == "enum" and tokens.peek(1) == "(":
                tokens.take()
                tokens.take("(")
                representation = tokens.take()
                tokens.take(")")
                found.enums[name] = (representation, _enum_members(tokens), line, path)
        else:
            tokens.take()


def _function(tokens: _Tokens) -> tuple[str, list[tuple[str, _Tokens]], _Tokens]:
    name = tokens.take()
    tokens.take("(")
    params = []
    while tokens.peek() != ")":
        while tokens.peek() in ("noalias", "comptime"):
            tokens.take()
        param = tokens.take()
        tokens.take(":")
        params.append((param, _collect_type(tokens, stop=(",", ")"))))
        if tokens.peek() == ",":
            tokens.take()
    tokens.take(")")
    if tokens.peek() == "callconv":
        tokens.take()
        tokens.skip_balanced()
    return name, params, _collect_type(tokens, stop=("{", ";"))


def _collect_type(tokens: _Tokens, stop: tuple[str, ...]) -> _Tokens:
    items = []
    depth = 0
    while tokens.peek() and not (depth == 0 and tokens.peek() in stop):
        token = tokens.take()
        depth += token in "([{"
        depth -= token in ")]}"
        items.append((token, tokens.items[tokens.index - 1][1]))
    return _Tokens(items)


def _struct_fields(tokens: _Tokens) -> list[tuple[str, _Tokens]]:
    tokens.take("{")
    fields = []
    while tokens.peek() and tokens.peek() != "}":
        if tokens.peek() in ("pub", "fn", "const", "var", "comptime"):
            while tokens.peek() not in (";", "{", "}", ""):  # a declaration inside the struct: skip it
                tokens.take()
            if tokens.peek() == "{":
                tokens.skip_balanced()
            if tokens.peek() == ";":
                tokens.take()
            continue
        name = tokens.take()
        tokens.take(":")
        fields.append((name, _collect_type(tokens, stop=(",", "}", "="))))
        if tokens.peek() == "=":
            _collect_type(tokens, stop=(",", "}"))
        if tokens.peek() == ",":
            tokens.take()
    tokens.take("}")
    return fields


def _enum_members(tokens: _Tokens) -> list[tuple[str, int]]:
    tokens.take("{")
    members = []
    value = 0
    while tokens.peek() and tokens.peek() != "}":
        if tokens.peek() in ("pub", "fn", "const"):
            break
        name = tokens.take().lstrip("@").strip('"')
        if tokens.peek() == "=":
            tokens.take()
            negative = tokens.peek() == "-"
            if negative:
                tokens.take()
            value = int(tokens.take().replace("_", ""), 0) * (-1 if negative else 1)
        members.append((name, value))
        value += 1
        if tokens.peek() == ",":
            tokens.take()
    while tokens.peek() and tokens.peek() != "}":
        tokens.skip_balanced() if tokens.peek() in "([{" else tokens.take()
    tokens.take("}")
    return members


def _type(tokens: _Tokens, found: _Declarations, enums: dict[str, Enum],
          structs: dict[str, Struct] | None = None) -> CType:
    text = " ".join(t for t, _ in tokens.items)
    tokens = _Tokens(list(tokens.items))
    ctype = _parse_type(tokens, found, enums, structs)
    if tokens.peek():
        raise ValueError(text)
    return ctype


def _parse_type(tokens: _Tokens, found: _Declarations, enums: dict[str, Enum],
                structs: dict[str, Struct] | None) -> CType:
    token = tokens.take()
    if token == "?":  # an optional pointer is a nullable pointer: None passes NULL
        inner = _parse_type(tokens, found, enums, structs)
        if inner.kind != "pointer":
            raise ValueError("an optional value")
        return inner
    sentinel_or_c = False
    if token == "*" or token == "[*c]" or (token == "[" and tokens.peek() == "*"):
        if token == "[":
            tokens.take("*")
            if tokens.peek() == ":":
                tokens.take()
                sentinel_or_c = tokens.take() == "0"
            tokens.take("]")
        sentinel_or_c = sentinel_or_c or token == "[*c]"
        const = False
        while tokens.peek() in ("const", "volatile", "allowzero"):
            const = const or tokens.take() == "const"
        pointee_name = tokens.peek()
        if pointee_name == "anyopaque":
            tokens.take()
            return CType.pointer(CType.void(), const=const)
        if pointee_name in ("u8", "c_char") and tokens.peek(1) == "" and (sentinel_or_c or pointee_name == "c_char"):
            tokens.take()
            return CType.pointer(CType.char(const), const=const)
        return CType.pointer(_parse_type(tokens, found, enums, structs), const=const)
    name = token
    while tokens.peek() == ".":  # helper.V2: the declaration's own name decides
        tokens.take()
        name = tokens.take()
    if name == "void":
        return CType.void()
    scalar = primitive(name)
    if scalar is not None:
        return scalar
    if name in enums:
        return CType.enum(name, enums[name].representation)
    if (structs is None or name in structs) and name in found.structs:
        return CType.struct(name)
    raise ValueError(f"the type {name!r}")


def _used_structs(functions: list[Function], structs: dict[str, Struct]) -> set[str]:
    used: set[str] = set()

    def visit(ctype: CType) -> None:
        if ctype.kind == "pointer" and ctype.pointee is not None:
            visit(ctype.pointee)
        elif ctype.kind == "struct" and ctype.name not in used and ctype.name in structs:
            used.add(ctype.name)
            for field in structs[ctype.name].fields or ():
                visit(field.type)

    for function in functions:
        visit(function.result)
        for param in function.params:
            visit(param.type)
    return used
