"""Type checker: every name known, every type agreeing, every function returning."""

from __future__ import annotations

from .errors import ToyError
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
    Node,
    Number,
    Return,
    Statement,
    Unary,
    While,
)

INTEGERS = ("i64", "i32")
NUMERIC = (*INTEGERS, "f64")
C_RESERVED = {"auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
              "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
              "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void",
              "volatile", "while", "main", "bool"}

Signatures = dict[str, tuple[list[str], str]]


def check(functions: list[Function]) -> Signatures:
    """Check the module; return each function's (parameter types, result type)."""
    signatures: Signatures = {}
    for function in functions:
        if function.name in signatures:
            raise ToyError(function.line, function.column, f"function '{function.name}' is defined twice")
        if function.name in C_RESERVED or function.name.startswith("toy_"):
            raise ToyError(function.line, function.column, f"'{function.name}' cannot name an exported function")
        signatures[function.name] = ([t for _, t in function.params], function.result)
    for function in functions:
        _Checker(signatures, function).run()
    return signatures


class _Checker:
    def __init__(self, signatures: Signatures, function: Function) -> None:
        self.signatures = signatures
        self.function = function
        self.scopes: list[dict[str, str]] = [{}]
        for name, kind in function.params:
            if name in self.scopes[0]:
                raise ToyError(function.line, function.column, f"parameter '{name}' is declared twice")
            self.scopes[0][name] = kind

    def run(self) -> None:
        self.block(self.function.body, new_scope=False)
        if not _always_returns(self.function.body):
            raise ToyError(self.function.line, self.function.column,
                           f"function '{self.function.name}' can reach its end without returning a value")

    def block(self, statements: list[Statement], new_scope: bool = True) -> None:
        if new_scope:
            self.scopes.append({})
        for statement in statements:
            self.statement(statement)
        if new_scope:
            self.scopes.pop()

    def statement(self, statement: Statement) -> None:
        if isinstance(statement, Let):
            kind = self.expr(statement.value, statement.declared)
            if statement.declared is not None:
                self.expect(statement.value, kind, statement.declared)
            if statement.name in self.scopes[-1]:
                raise ToyError(statement.line, statement.column, f"'{statement.name}' is already declared here")
            self.scopes[-1][statement.name] = statement.declared or kind
        elif isinstance(statement, Assign):
            target = self.lookup(statement, statement.name)
            self.expect(statement.value, self.expr(statement.value, target), target)
        elif isinstance(statement, Return):
            self.expect(statement.value, self.expr(statement.value, self.function.result), self.function.result)
        elif isinstance(statement, If):
            self.condition(statement.condition)
            self.block(statement.then)
            self.block(statement.otherwise)
        elif isinstance(statement, While):
            self.condition(statement.condition)
            self.block(statement.body)
        elif isinstance(statement, ExprStatement):
            self.expr(statement.value)

    def condition(self, expr: Expr) -> None:
        self.expect(expr, self.expr(expr, "bool"), "bool")

    def expect(self, where: Node, found: str, wanted: str) -> None:
        if found != wanted:
            raise ToyError(where.line, where.column, f"expected {wanted}, found {found}")

    def lookup(self, where: Node, name: str) -> str:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise ToyError(where.line, where.column, f"unknown name '{name}'")

    def expr(self, expr: Expr, context: str | None = None) -> str:
        """The type of ``expr``; ``context`` lets an integer literal be an i32."""
        if isinstance(expr, Number):
            if isinstance(expr.value, float):
                return "f64"
            kind = context if context in INTEGERS else "i64"
            bits = 63 if kind == "i64" else 31
            if expr.value >= 2**bits:  # a minus sign is a separate operator, so the limit is the positive one
                raise ToyError(expr.line, expr.column, f"integer {expr.value} is too large for {kind}")
            return kind
        if isinstance(expr, Boolean):
            return "bool"
        if isinstance(expr, Name):
            return self.lookup(expr, expr.name)
        if isinstance(expr, Unary):
            operand = self.expr(expr.operand, context)
            wanted = ("bool",) if expr.op == "!" else NUMERIC
            if operand not in wanted:
                raise ToyError(expr.line, expr.column, f"'{expr.op}' does not apply to {operand}")
            return operand
        if isinstance(expr, Binary):
            return self.binary(expr, context)
        if isinstance(expr, Call):
            return self.call(expr)
        raise AssertionError(expr)

    def binary(self, expr: Binary, context: str | None) -> str:
        if expr.op in ("&&", "||"):
            self.condition(expr.left)
            self.condition(expr.right)
            return "bool"
        comparison = expr.op in ("==", "!=", "<", "<=", ">", ">=")
        operand_context = None if comparison else context
        left = self.expr(expr.left, operand_context)
        right = self.expr(expr.right, left if left in INTEGERS else operand_context)
        if isinstance(expr.left, Number) and right in INTEGERS and left in INTEGERS:
            left = right  # 1 + x where x: i32
        if left != right:
            raise ToyError(expr.line, expr.column, f"'{expr.op}' needs operands of one type, found {left} and {right}")
        if comparison:
            if left == "bool" and expr.op not in ("==", "!="):
                raise ToyError(expr.line, expr.column, f"'{expr.op}' does not apply to bool")
            return "bool"
        if left not in NUMERIC or (expr.op == "%" and left not in INTEGERS):
            raise ToyError(expr.line, expr.column, f"'{expr.op}' does not apply to {left}")
        return left

    def call(self, expr: Call) -> str:
        if expr.name not in self.signatures:
            raise ToyError(expr.line, expr.column, f"unknown function '{expr.name}'")
        params, result = self.signatures[expr.name]
        if len(params) != len(expr.args):
            raise ToyError(expr.line, expr.column,
                           f"'{expr.name}' takes {len(params)} argument(s), {len(expr.args)} given")
        for arg, wanted in zip(expr.args, params):
            self.expect(arg, self.expr(arg, wanted), wanted)
        return result


def _always_returns(statements: list[Statement]) -> bool:
    for statement in statements:
        if isinstance(statement, Return):
            return True
        if isinstance(statement, If) and _always_returns(statement.then) and _always_returns(statement.otherwise):
            return True
    return False
