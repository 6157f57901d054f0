"""Lexer and parser: Toy source -> syntax tree.

    module    := { doc* "fn" NAME "(" [param {"," param}] ")" "->" TYPE block }
    param     := NAME ":" TYPE                 TYPE := i64 | i32 | f64 | bool
    block     := "{" { statement } "}"
    statement := "let" NAME [":" TYPE] "=" expr ";" | NAME "=" expr ";" | "return" expr ";"
               | "if" expr block ["else" (block | if-statement)] | "while" expr block | expr ";"
    expr      := precedence climbing over || && == != < <= > >= + - * / % and unary - !
    primary   := INT | FLOAT | true | false | NAME | NAME "(" [expr {"," expr}] ")" | "(" expr ")"
    doc       := "///" text up to the end of the line
"""

from __future__ import annotations

import dataclasses
import re
from typing import Optional, Union

from .errors import ToyError

TYPES = ("i64", "i32", "f64", "bool")
KEYWORDS = {"fn", "let", "return", "if", "else", "while", "true", "false"}
_TOKEN = re.compile(r"""
    (?P<doc>///[^\n]*) | (?P<comment>//[^\n]*) | (?P<space>\s+)
  | (?P<float>\d+\.\d+) | (?P<int>\d+) | (?P<name>[A-Za-z_]\w*)
  | (?P<op>->|==|!=|<=|>=|&&|\|\||[-+*/%<>=!(){},:;])
""", re.VERBOSE)


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # doc, float, int, name, op, end
    text: str
    line: int
    column: int


def tokenize(text: str) -> list[Token]:
    tokens = []
    position, line, line_start = 0, 1, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ToyError(line, position - line_start + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), line, position - line_start + 1))
        for offset, char in enumerate(match.group()):
            if char == "\n":
                line, line_start = line + 1, position + offset + 1
        position = match.end()
    tokens.append(Token("end", "", line, position - line_start + 1))
    return tokens


# -- the tree ----------------------------------------------------------------

@dataclasses.dataclass
class Node:
    line: int
    column: int


@dataclasses.dataclass
class Number(Node):
    value: Union[int, float]


@dataclasses.dataclass
class Boolean(Node):
    value: bool


@dataclasses.dataclass
class Name(Node):
    name: str


@dataclasses.dataclass
class Unary(Node):
    op: str
    operand: Expr


@dataclasses.dataclass
class Binary(Node):
    op: str
    left: Expr
    right: Expr


@dataclasses.dataclass
class Call(Node):
    name: str
    args: list[Expr]


Expr = Union[Number, Boolean, Name, Unary, Binary, Call]


@dataclasses.dataclass
class Let(Node):
    name: str
    declared: Optional[str]
    value: Expr


@dataclasses.dataclass
class Assign(Node):
    name: str
    value: Expr


@dataclasses.dataclass
class Return(Node):
    value: Expr


@dataclasses.dataclass
class If(Node):
    condition: Expr
    then: list[Statement]
    otherwise: list[Statement]


@dataclasses.dataclass
class While(Node):
    condition: Expr
    body: list[Statement]


@dataclasses.dataclass
class ExprStatement(Node):
    value: Expr


Statement = Union[Let, Assign, Return, If, While, ExprStatement]


@dataclasses.dataclass
class Function(Node):
    name: str
    params: list[tuple[str, str]]
    result: str
    body: list[Statement]
    doc: str


_PRECEDENCE = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
               "*": 6, "/": 6, "%": 6}


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    def parse_module(self) -> list[Function]:
        functions = []
        while self.peek().kind != "end":
            functions.append(self.function())
        return functions

    # -- helpers
    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.peek()
        if token.text != text or token.kind not in ("op", "name"):
            raise ToyError(token.line, token.column, f"expected '{text}', found {_describe(token)}")
        return self.take()

    def identifier(self, what: str) -> Token:
        token = self.peek()
        if token.kind != "name" or token.text in KEYWORDS:
            raise ToyError(token.line, token.column, f"expected {what}, found {_describe(token)}")
        return self.take()

    def type_name(self) -> str:
        token = self.peek()
        if token.text not in TYPES:
            raise ToyError(token.line, token.column, f"unknown type {token.text!r}; types are {', '.join(TYPES)}")
        return self.take().text

    # -- declarations and statements
    def function(self) -> Function:
        docs = []
        while self.peek().kind == "doc":
            docs.append(self.take().text[3:].strip())
        start = self.expect("fn")
        name = self.identifier("a function name").text
        self.expect("(")
        params = []
        while self.peek().text != ")":
            param = self.identifier("a parameter name").text
            self.expect(":")
            params.append((param, self.type_name()))
            if self.peek().text != ")":
                self.expect(",")
        self.expect(")")
        self.expect("->")
        result = self.type_name()
        return Function(start.line, start.column, name, params, result, self.block(), "\n".join(docs))

    def block(self) -> list[Statement]:
        self.expect("{")
        body = []
        while self.peek().text != "}":
            if self.peek().kind == "end":
                token = self.peek()
                raise ToyError(token.line, token.column, "unexpected end of file: a '}' is missing")
            body.append(self.statement())
        self.expect("}")
        return body

    def statement(self) -> Statement:
        token = self.peek()
        if token.text == "let":
            self.take()
            name = self.identifier("a variable name").text
            declared = None
            if self.peek().text == ":":
                self.take()
                declared = self.type_name()
            self.expect("=")
            value = self.expression()
            self.expect(";")
            return Let(token.line, token.column, name, declared, value)
        if token.text == "return":
            self.take()
            value = self.expression()
            self.expect(";")
            return Return(token.line, token.column, value)
        if token.text == "if":
            return self.if_statement()
        if token.text == "while":
            self.take()
            condition = self.expression()
            return While(token.line, token.column, condition, self.block())
        if token.kind == "name" and self.tokens[self.index + 1].text == "=":
            self.take()
            self.take()
            value = self.expression()
            self.expect(";")
            return Assign(token.line, token.column, token.text, value)
        value = self.expression()
        self.expect(";")
        return ExprStatement(token.line, token.column, value)

    def if_statement(self) -> If:
        token = self.expect("if")
        condition = self.expression()
        then = self.block()
        otherwise: list[Statement] = []
        if self.peek().text == "else":
            self.take()
            otherwise = [self.if_statement()] if self.peek().text == "if" else self.block()
        return If(token.line, token.column, condition, then, otherwise)

    # -- expressions
    def expression(self, minimum: int = 1) -> Expr:
        left = self.unary()
        while self.peek().kind == "op" and _PRECEDENCE.get(self.peek().text, 0) >= minimum:
            op = self.take()
            right = self.expression(_PRECEDENCE[op.text] + 1)
            left = Binary(op.line, op.column, op.text, left, right)
        return left

    def unary(self) -> Expr:
        token = self.peek()
        if token.text in ("-", "!") and token.kind == "op":
            self.take()
            return Unary(token.line, token.column, token.text, self.unary())
        return self.primary()

    def primary(self) -> Expr:
        token = self.take()
        if token.kind == "int":
            return Number(token.line, token.column, int(token.text))
        if token.kind == "float":
            return Number(token.line, token.column, float(token.text))
        if token.text in ("true", "false"):
            return Boolean(token.line, token.column, token.text == "true")
        if token.kind == "name" and token.text not in KEYWORDS:
            if self.peek().text == "(":
                self.take()
                args = []
                while self.peek().text != ")":
                    args.append(self.expression())
                    if self.peek().text != ")":
                        self.expect(",")
                self.expect(")")
                return Call(token.line, token.column, token.text, args)
            return Name(token.line, token.column, token.text)
        if token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        raise ToyError(token.line, token.column, f"expected an expression, found {_describe(token)}")


def _describe(token: Token) -> str:
    return "the end of the file" if token.kind == "end" else f"'{token.text}'"


def parse(text: str) -> list[Function]:
    return Parser(text).parse_module()
