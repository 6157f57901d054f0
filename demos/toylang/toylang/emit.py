"""C back end: a checked module -> C source with a plain C ABI.

Integer arithmetic wraps (two's complement) and dividing by zero gives zero, so
no Toy program reaches C's undefined behaviour.
"""

from __future__ import annotations

from .checker import Signatures, _Checker
from .syntax import (
    Assign,
    Binary,
    Boolean,
    Call,
    Expr,
    ExprStatement,
    Function,
    If,
    Let,
    Name,
    Number,
    Return,
    Statement,
    Unary,
    While,
)

C_TYPES = {"i64": "int64_t", "i32": "int32_t", "f64": "double", "bool": "bool"}
_RUNTIME = """\
#include <stdbool.h>
#include <stdint.h>

#define TOY_INT(T, U) \\
    static inline T toy_add_##T(T a, T b) { return (T)((U)a + (U)b); } \\
    static inline T toy_sub_##T(T a, T b) { return (T)((U)a - (U)b); } \\
    static inline T toy_mul_##T(T a, T b) { return (T)((U)a * (U)b); } \\
    static inline T toy_neg_##T(T a) { return (T)(0 - (U)a); } \\
    static inline T toy_div_##T(T a, T b) { return b == 0 ? 0 : b == -1 ? toy_neg_##T(a) : a / b; } \\
    static inline T toy_mod_##T(T a, T b) { return b == 0 || b == -1 ? 0 : a % b; }
TOY_INT(int64_t, uint64_t)
TOY_INT(int32_t, uint32_t)
"""
_INT_HELPERS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod"}


def emit(functions: list[Function], signatures: Signatures) -> str:
    """The C translation of a module that :func:`toylang.checker.check` accepted."""
    lines = [_RUNTIME]
    lines += [f"{_prototype(f)};" for f in functions]
    for function in functions:
        lines.append("")
        lines.append(f"{_prototype(function)} {{")
        lines += _Emitter(signatures, function).block(function.body, 1)
        lines.append("}")
    return "\n".join(lines) + "\n"


def _prototype(function: Function) -> str:
    params = ", ".join(f"{C_TYPES[t]} v_{n}" for n, t in function.params) or "void"
    return f"{C_TYPES[function.result]} {function.name}({params})"


class _Emitter(_Checker):
    """Walks the tree again, with the checker's scopes, to know each expression's type."""

    def block(self, statements: list[Statement], depth: int, new_scope: bool = True) -> list[str]:  # type: ignore[override]
        if new_scope:
            self.scopes.append({})
        out = [line for s in statements for line in self.emit(s, depth)]
        if new_scope:
            self.scopes.pop()
        return out

    def emit(self, statement: Statement, depth: int) -> list[str]:
        pad = "    " * depth
        if isinstance(statement, Let):
            kind = statement.declared or self.expr(statement.value, statement.declared)
            self.scopes[-1][statement.name] = kind
            return [f"{pad}{C_TYPES[kind]} v_{statement.name} = {self.c(statement.value, kind)};"]
        if isinstance(statement, Assign):
            kind = self.lookup(statement, statement.name)
            return [f"{pad}v_{statement.name} = {self.c(statement.value, kind)};"]
        if isinstance(statement, Return):
            return [f"{pad}return {self.c(statement.value, self.function.result)};"]
        if isinstance(statement, If):
            out = [f"{pad}if ({self.c(statement.condition, 'bool')}) {{", *self.block(statement.then, depth + 1)]
            if statement.otherwise:
                out += [f"{pad}}} else {{", *self.block(statement.otherwise, depth + 1)]
            return [*out, f"{pad}}}"]
        if isinstance(statement, While):
            return [f"{pad}while ({self.c(statement.condition, 'bool')}) {{", *self.block(statement.body, depth + 1),
                    f"{pad}}}"]
        assert isinstance(statement, ExprStatement)
        return [f"{pad}(void)({self.c(statement.value, None)});"]

    def c(self, expr: Expr, context: str | None) -> str:
        kind = self.expr(expr, context)
        if isinstance(expr, Number):
            if isinstance(expr.value, float):
                return repr(expr.value)
            return f"INT64_C({expr.value})" if kind == "i64" else f"INT32_C({expr.value})"
        if isinstance(expr, Boolean):
            return "true" if expr.value else "false"
        if isinstance(expr, Name):
            return f"v_{expr.name}"
        if isinstance(expr, Unary):
            operand = self.c(expr.operand, context)
            if expr.op == "!":
                return f"(!{operand})"
            return f"toy_neg_{C_TYPES[kind]}({operand})" if kind in ("i64", "i32") else f"(-{operand})"
        if isinstance(expr, Binary):
            comparison = expr.op in ("==", "!=", "<", "<=", ">", ">=", "&&", "||")
            operand_kind = kind if not comparison else None
            left_kind = self.expr(expr.left, operand_kind)
            right_kind = self.expr(expr.right, left_kind)
            if isinstance(expr.left, Number) and right_kind in ("i64", "i32"):
                left_kind = right_kind
            left, right = self.c(expr.left, left_kind), self.c(expr.right, left_kind)
            if not comparison and kind in ("i64", "i32"):
                return f"toy_{_INT_HELPERS[expr.op]}_{C_TYPES[kind]}({left}, {right})"
            return f"({left} {expr.op} {right})"
        assert isinstance(expr, Call)
        params, _ = self.signatures[expr.name]
        args = ", ".join(self.c(arg, wanted) for arg, wanted in zip(expr.args, params))
        return f"{expr.name}({args})"
