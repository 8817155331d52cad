"""The syntax of policy expressions: tokens and a tree, read by a recursive-descent parser
of CEL, and the error that names where an expression goes wrong.

The engine (see :mod:`chalicelib.policies.cel`) parses and evaluates but exposes no tree;
this parser runs only on expressions the engine has already accepted, so that the checks
can see names, calls, literals and comprehensions with their positions. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.configurations.content import position

#: Deepest nesting of parentheses, brackets, calls and conditionals.
MAX_NESTING = 32


class ExpressionError(ValueError):
    """The expression cannot be a policy: ``message`` says why, at ``line`` and ``column``
    (both from 1), which is character ``offset`` (from 0) of the source."""

    def __init__(self, message: str, source: str, offset: int) -> None:
        offset = max(0, min(offset, len(source)))
        line, column = position(source, offset)
        super().__init__(f"{message} (line {line}, column {column})")
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset


# --- tokens ----------------------------------------------------------------------------------

_TOKENS = re.compile(r"""
  (?P<space>[ \t\n\r\f]+|//[^\n]*)
| (?P<string>(?:[rR][bB]?|[bB][rR])(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'[^'\n\r]*'|"[^"\n\r]*")
           |[bB]?(?:'''(?:\\[\s\S]|[^\\])*?'''|\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"
                   |'(?:\\.|[^'\\\n\r])*'|"(?:\\.|[^"\\\n\r])*"))
| (?P<double>\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
| (?P<uint>(?:0x[0-9a-fA-F]+|\d+)[uU])
| (?P<int>0x[0-9a-fA-F]+|\d+)
| (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
| (?P<punct>==|!=|<=|>=|&&|\|\||[<>!+\-*/%?:.,()\[\]{}])
""", re.VERBOSE)
_KEYWORDS = {"true": "bool", "false": "bool", "null": "null_type", "in": "punct"}


@dataclass(frozen=True, slots=True)
class Token:
    """One token of an expression, where it starts."""

    kind: str  # string, bytes, double, uint, int, bool, null_type, ident, punct, end
    text: str
    offset: int


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source`` (spaces and comments dropped), ending with an ``end`` token."""
    tokens, offset = [], 0
    while offset < len(source):
        found = _TOKENS.match(source, offset)
        if found is None:
            raise ExpressionError(f"unexpected character {source[offset]!r}", source, offset)
        kind, text = found.lastgroup or "", found.group()
        if kind == "string" and re.match(r"[rR]?[bB]", text):
            kind = "bytes"
        if kind != "space":
            tokens.append(Token(_KEYWORDS.get(text, kind) if kind == "ident" else kind,
                                 text, offset))
        offset = found.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def string_value(text: str) -> str | None:
    """The value of a string literal without escapes (None when it has some)."""
    raw = text[0] in "rR"
    body = text.lstrip("rR")
    quotes = 3 if body[:3] in ("'''", '"""') else 1
    value = body[quotes:-quotes]
    return value if raw or "\\" not in value else None


# --- syntax tree -----------------------------------------------------------------------------

_MACROS = {"all": 2, "exists": 2, "exists_one": 2, "existsOne": 2, "map": 3, "filter": 2}
_BINARY = ({"||": "_||_"}, {"&&": "_&&_"},
           {"==": "_==_", "!=": "_!=_", "<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_",
            "in": "@in"},
           {"+": "_+_", "-": "_-_"}, {"*": "_*_", "/": "_/_", "%": "_%_"})


@dataclass(frozen=True, slots=True)
class Node:
    """One node: ``lit`` (name: its type), ``ident``, ``select`` (name: the field; span: the
    ``.field`` text), ``has``, ``call`` (name: the function or operator; target: the receiver),
    ``list``, ``map`` (args: keys and values alternately), ``compr`` (name: the macro; target:
    the range; var; args: the bodies). A literal keeps its ``text`` and, for a string without
    escapes, its ``value``."""

    kind: str
    offset: int
    name: str = ""
    args: tuple[Node, ...] = ()
    target: Node | None = None
    var: str = ""
    span: tuple[int, int] = (0, 0)
    value: str | None = None
    text: str = ""


class Parser:
    """A recursive-descent CEL parser for expressions the engine has parsed already."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.at = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self._expr()
        self._expect("")
        return node

    def _peek(self) -> Token:
        return self.tokens[self.at]

    def _take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _is(self, text: str) -> bool:
        token = self.tokens[self.at]
        return token.text == text and token.kind in ("punct", "end")

    def _expect(self, text: str) -> Token:
        if not self._is(text):
            raise self._unexpected()
        return self._take()

    def _unexpected(self) -> ExpressionError:
        token = self._peek()
        what = repr(token.text) if token.text else "the end"
        return ExpressionError(f"unexpected {what}", self.source, token.offset)

    def _expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"the expression nests deeper than {MAX_NESTING} levels",
                                  self.source, self._peek().offset)
        node = self._binary(0)
        if self._is("?"):
            mark = self._take()
            then = self._binary(0)
            self._expect(":")
            node = Node("call", mark.offset, "_?_:_", (node, then, self._expr()))
        self.depth -= 1
        return node

    def _binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self._unary()
        node = self._binary(level + 1)
        while self._peek().kind == "punct" and self._peek().text in _BINARY[level]:
            operator = self._take()
            right = self._binary(level + 1)
            node = Node("call", operator.offset, _BINARY[level][operator.text], (node, right))
        return node

    def _unary(self) -> Node:
        marks = []
        while self._is("!") or self._is("-"):
            marks.append(self._take())
        node = self._member()
        for mark in reversed(marks):
            node = Node("call", mark.offset, "!_" if mark.text == "!" else "-_", (node,))
        return node

    def _member(self) -> Node:
        node = self._primary()
        while True:
            if self._is("."):
                node = self._dot(node, self._take())
            elif self._is("["):
                mark = self._take()
                index = self._expr()
                self._expect("]")
                node = Node("call", mark.offset, "_[_]", (node, index))
            elif self._is("{") and node.kind in ("ident", "select"):
                raise self._struct()
            else:
                return node

    def _dot(self, node: Node, dot: Token) -> Node:
        name = self._take()
        if name.kind != "ident":
            self.at -= 1
            raise self._unexpected()
        if not self._is("("):
            return Node("select", name.offset, name.text, target=node,
                         span=(dot.offset, name.offset + len(name.text)))
        args = self._arguments(")")
        if name.text in _MACROS and args and args[0].kind == "ident" \
                and 2 <= len(args) <= _MACROS[name.text]:
            return Node("compr", name.offset, name.text, args[1:], node, args[0].name)
        return Node("call", name.offset, name.text, args, node)

    def _struct(self) -> ExpressionError:
        return ExpressionError("message construction (Type{...}) is not supported",
                               self.source, self._peek().offset)

    def _arguments(self, close: str) -> tuple[Node, ...]:
        self._take()
        args: list[Node] = []
        while not self._is(close):
            args.append(self._expr())
            if not self._is(close):
                self._expect(",")
        self._take()
        return tuple(args)

    def _primary(self) -> Node:
        token = self._peek()
        if token.kind == "punct" and token.text in (".", "(", "[", "{"):
            return self._bracketed(token)
        if token.kind == "ident":
            return self._name(self._take())
        if token.kind in ("string", "bytes", "double", "uint", "int", "bool", "null_type"):
            self._take()
            value = string_value(token.text) if token.kind == "string" else None
            return Node("lit", token.offset, token.kind, value=value, text=token.text)
        raise self._unexpected()

    def _bracketed(self, token: Token) -> Node:
        if token.text == ".":
            self._take()
            if self._peek().kind != "ident":
                raise self._unexpected()
            return self._name(self._take())
        if token.text == "(":
            self._take()
            node = self._expr()
            self._expect(")")
            return node
        if token.text == "[":
            return Node("list", token.offset, args=self._arguments("]"))
        return Node("map", token.offset, args=self._entries())

    def _entries(self) -> tuple[Node, ...]:
        self._take()
        args: list[Node] = []
        while not self._is("}"):
            args.append(self._expr())
            self._expect(":")
            args.append(self._expr())
            if not self._is("}"):
                self._expect(",")
        self._take()
        return tuple(args)

    def _name(self, name: Token) -> Node:
        if self._is("{"):
            raise self._struct()
        if not self._is("("):
            return Node("ident", name.offset, name.text)
        args = self._arguments(")")
        if name.text == "has" and len(args) == 1 and args[0].kind == "select":
            return Node("has", name.offset, target=args[0])
        return Node("call", name.offset, name.text, args)
