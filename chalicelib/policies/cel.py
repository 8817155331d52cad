"""Policy expressions in CEL: compiled once with every check that can be made before any data is
seen, then evaluated per input, failing closed.

The engine is the Rust-backed ``common-expression-language`` package (module ``cel``). It parses
and evaluates but has no type checker and exposes no syntax tree, so this module reads the
expression itself (:mod:`chalicelib.policies.syntax`, run only on what the engine already
accepted) to check:

* syntax (the engine's own errors, with their line and column);
* names: the variables of the policy's scope, the comprehension variables in their bodies,
  the standard functions the engine implements, in the form it implements them;
* types, as far as they are known without data: the fields of ``agent``, ``config`` and
  ``rollout`` (:data:`chalicelib.policies.inputs.SCHEMA`) and literals are typed; every
  operator or function whose operands all have known types is tried on the engine with sample
  values of those types, and refused if the engine has no overload for them;
* cost: length, nesting, the number and nesting of comprehensions, and an estimate of the
  evaluation steps as a polynomial in the size of the dynamic data (parsed documents,
  attributes), bounded for a typical input here and for the actual input at evaluation.

What only data can tell (a missing key, an index out of range, a value of another type inside
a parsed document) fails at evaluation, and then the verdict denies (fail closed).
``docs/policies.md`` is the operator's account of all this.

Pure: no I/O. The engine is loaded on first use, without the command-line interface its
package imports eagerly.
"""

from __future__ import annotations

import difflib
import functools
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, NoReturn

from chalicelib.policies.inputs import BOUNDS, SCHEMA
from chalicelib.policies.syntax import (
    ExpressionError,
    Node,
    Parser,
)

#: The scopes a policy is evaluated in, and the variables each one sees.
SCOPES = ("rollout", "publish")
VARIABLES: dict[str, tuple[str, ...]] = {"rollout": ("agent", "config", "rollout"),
                                         "publish": ("config",)}
#: Longest expression accepted, in characters.
MAX_EXPRESSION_LENGTH = 4096
#: Most comprehension macros (all, exists, exists_one, map, filter) in one expression.
MAX_COMPREHENSIONS = 8
#: Deepest nesting of comprehensions (one inside the body of another is depth 2).
MAX_COMPREHENSION_DEPTH = 2
#: Most evaluation steps an expression may be estimated to take (at compile time over an input
#: whose dynamic data holds :data:`TYPICAL_VALUES` values; at evaluation over the actual input).
MAX_COST = 10_000_000
#: The size of the dynamic data (parsed configuration, attributes) the compile-time bound
#: assumes: a typical collector configuration holds a few hundred values.
TYPICAL_VALUES = 1_000


@dataclass(frozen=True)
class Verdict:
    """What one evaluation decided.

    ``allowed`` is true only when the expression returned exactly boolean ``true``. ``error``
    says why the evaluation failed (a missing key, a wrong type, a non-boolean result, a cost
    over the bound); ``allowed`` is then false: an error denies.
    """

    allowed: bool
    error: str | None = None


ALLOWED = Verdict(True)
DENIED = Verdict(False)


@dataclass(frozen=True)
class Compiled:
    """A checked expression, ready to evaluate any number of times (safe to cache and share).

    ``variables`` are the scope's variables it reads; ``cost`` its estimated evaluation steps
    for a typical input.
    """

    source: str
    scope: str
    variables: frozenset[str]
    cost: int
    _program: Any = field(repr=False, compare=False)
    _fields: tuple[tuple[str, Used], ...] = field(repr=False, compare=False)
    _steps: tuple[int, ...] = field(repr=False, compare=False)

    def evaluate(self, variables: dict[str, Any]) -> Verdict:
        """The verdict of the expression over ``variables`` (built by
        :mod:`chalicelib.policies.inputs`; treated as immutable, so a caller evaluating many
        agents against one ``config`` shares its conversion for the engine)."""
        return _evaluate(self, variables)

    def reads(self, variable: str, name: str) -> bool:
        """Whether the expression may read the field ``name`` of ``variable`` (it reads it by
        name, or uses the variable whole)."""
        for root, used in self._fields:
            if root == variable:
                return used is None or any(key == name for key, _keys in used)
        return False


def compile_expression(source: str, scope: str) -> Compiled:
    """``source`` checked for ``scope`` and compiled, or :class:`ExpressionError` saying where
    and why it cannot be a policy."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return _compile(source, scope)


@functools.lru_cache(maxsize=256)
def _compile(source: str, scope: str) -> Compiled:
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"the expression is {len(source)} characters long; at most "
                              f"{MAX_EXPRESSION_LENGTH} are allowed", source,
                              MAX_EXPRESSION_LENGTH)
    checked = _engine_program(source)
    tree = Parser(source).parse()
    found = _Checker(source, scope).check(tree)
    _cross_check(source, checked, found)
    typical = _at(found.steps, TYPICAL_VALUES)
    if typical > MAX_COST:
        raise ExpressionError(f"the expression may cost about {typical} steps over a typical "
                              f"input ({TYPICAL_VALUES} values of configuration or attributes); "
                              f"at most {MAX_COST} are allowed", source, 0)
    return Compiled(source=source, scope=scope, variables=frozenset(found.fields),
                    cost=typical, _program=_fast_program(source, tree, checked),
                    _fields=tuple(sorted(found.fields.items())), _steps=found.steps)


# --- the engine ------------------------------------------------------------------------------


@functools.cache
def engine() -> ModuleType:
    """The engine's compiled extension (``cel.cel``), loaded without the ``cel`` package's
    ``__init__`` (which imports its command-line interface: typer, rich...); the package as
    imported normally if that cannot be done."""
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:
        return loaded
    try:
        return _load_extension()
    except (ImportError, OSError, StopIteration, AttributeError):  # pragma: no cover
        import cel

        return cel


def _load_extension() -> ModuleType:
    package = importlib.util.find_spec("cel")
    if package is None or not package.submodule_search_locations:
        raise ImportError("the cel package is not installed")
    folder = next(iter(package.submodule_search_locations))
    path = next(candidate for suffix in importlib.machinery.EXTENSION_SUFFIXES
                if os.path.exists(candidate := os.path.join(folder, f"cel{suffix}")))
    loader = importlib.machinery.ExtensionFileLoader("cel.cel", path)
    spec = importlib.util.spec_from_file_location("cel.cel", path, loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules["cel.cel"] = module  # what `import cel` would load: it reuses this one
    return module


_ENGINE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")


def _engine_program(source: str) -> Any:
    """The engine's program for ``source``, or its syntax error as an :class:`ExpressionError`."""
    try:
        return engine().compile(source)
    except ValueError as exc:
        raise engine_error(source, str(exc)) from exc


def engine_error(source: str, text: str) -> ExpressionError:
    """The engine's compile error ``text`` about ``source``, at the place it names (its first
    syntax error: the others follow from it); where it names none, at the first token this
    module's parser cannot place."""
    found = list(_ENGINE_ERROR.finditer(text))
    if not found:
        return ExpressionError("syntax error", source, _failure_offset(source))
    first = next((error for error in found if error[3].startswith("Syntax error")), found[0])
    line, column, message = int(first[1]), int(first[2]), first[3]
    message = message.split(" expecting ")[0].removeprefix("Syntax error: ")
    return ExpressionError(f"syntax error: {message}", source, _offset(source, line, column))


def _offset(source: str, line: int, column: int) -> int:
    lines = source.split("\n")
    return sum(len(text) + 1 for text in lines[:line - 1]) + column - 1


def _failure_offset(source: str) -> int:
    try:
        Parser(source).parse()
    except ExpressionError as exc:
        return exc.offset
    return 0


# --- types -----------------------------------------------------------------------------------
# A type is a name ("int", "string", ..., "dyn" for unknown), ("list", T), ("map", K, V) or
# ("object", name, ((field, T), ...)) for the variables and their nested objects.

_Type = Any
DYN = "dyn"
#: Identifiers that name types (``type(x) == int``).
TYPE_NAMES = frozenset({"bool", "int", "uint", "double", "string", "bytes", "list", "map",
                        "null_type", "type"})
_ENGINE_TYPES = {"google.protobuf.Timestamp": "timestamp", "google.protobuf.Duration": "duration",
                 "list": ("list", DYN), "map": ("map", DYN, DYN)}
_SAMPLES = {"bool": "true", "int": "1", "uint": "1u", "double": "1.5", "string": "'1'",
            "bytes": "b'1'", "null_type": "null", "type": "int",
            "timestamp": "timestamp('2000-01-01T00:00:00Z')", "duration": "duration('1s')"}


def _schema_type(name: str, spec: Any) -> _Type:
    if isinstance(spec, dict):
        return ("object", name, tuple((key, _schema_type(f"{name}.{key}", value))
                                      for key, value in spec.items()))
    spec = spec.replace(" ", "")
    if spec.startswith("list(") and spec.endswith(")"):
        return ("list", _schema_type(name, spec[5:-1]))
    if spec.startswith("map(") and spec.endswith(")"):
        key, value = spec[4:-1].split(",", 1)
        return ("map", _schema_type(name, key), _schema_type(name, value))
    return spec


_ROOTS: dict[str, _Type] = {name: _schema_type(name, spec) for name, spec in SCHEMA.items()}


def _describe(kind: _Type) -> str:
    if isinstance(kind, str):
        return kind
    if kind[0] == "list":
        return f"list({_describe(kind[1])})"
    if kind[0] == "map":
        return f"map({_describe(kind[1])}, {_describe(kind[2])})"
    return kind[1]


def _known(kind: _Type) -> bool:
    """Whether the type is known well enough to try the engine on a sample of it."""
    return _sample(kind) is not None


def _sample(kind: _Type) -> str | None:
    """A CEL literal of type ``kind`` (None for ``dyn`` and what contains it)."""
    if isinstance(kind, str):
        return _SAMPLES.get(kind)
    if kind[0] == "list":
        item = _sample(kind[1])
        return None if item is None else f"[{item}, {item}]"
    if kind[0] == "map":
        key, value = _sample(kind[1]), _sample(kind[2])
        return None if key is None or value is None else f"{{{key}: {value}}}"
    fields = [(name, _sample(value)) for name, value in kind[2]]
    if any(value is None for _, value in fields):
        return None
    return "{" + ", ".join(f"'{name}': {value}" for name, value in fields) + "}"


# --- probing the engine with samples ---------------------------------------------------------

_OPERATORS = {"_+_": "+", "_-_": "-", "_*_": "*", "_/_": "/", "_%_": "%", "_==_": "==",
              "_!=_": "!=", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">=", "@in": "in"}
_LOGICAL = {"_&&_": "&&", "_||_": "||", "!_": "!"}


def _render(name: str, member: bool, samples: list[str]) -> str:
    """The CEL text calling ``name`` on ``samples`` (the receiver first when ``member``)."""
    if name in _OPERATORS:
        return f"({samples[0]}) {_OPERATORS[name]} ({samples[1]})"
    if name == "-_":
        return f"-({samples[0]})"
    if name == "_[_]":
        return f"({samples[0]})[{samples[1]}]"
    if member:
        return f"({samples[0]}).{name}({', '.join(samples[1:])})"
    return f"{name}({', '.join(samples)})"


@functools.lru_cache(maxsize=1024)
def _probe(text: str, name: str, constant: bool) -> tuple[str | None, _Type]:
    """Try the call ``text`` (of function ``name``) on the engine: why it cannot work, if it
    cannot, and the type of its result (``dyn`` when only data would tell).

    On samples of types, only a missing overload is an error; on ``constant`` operands (all
    literals), any error is: it will happen on every evaluation.
    """
    try:
        found = engine().evaluate(f"type({text})")
    except _ENGINE_ERRORS as exc:
        missing = isinstance(exc, TypeError) or str(exc).startswith(
            f"Undefined variable or function: '{name}'")
        return ("" if missing else _message(exc)) if missing or constant else None, DYN
    return None, _ENGINE_TYPES.get(found, found)


# --- functions -------------------------------------------------------------------------------

#: The engine's standard functions, called as ``f(x)``, with their arity.
GLOBAL_FUNCTIONS = {"size": 1, "int": 1, "uint": 1, "double": 1, "string": 1, "bytes": 1,
                    "dyn": 1, "type": 1, "timestamp": 1, "duration": 1}
_GETTERS = ("getFullYear", "getMonth", "getDayOfYear", "getDayOfMonth", "getDate",
            "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds")
#: The engine's standard functions, called on a value as ``x.f(...)``, with their arity.
MEMBER_FUNCTIONS = {"size": 0, "contains": 1, "startsWith": 1, "endsWith": 1, "matches": 1,
                    **dict.fromkeys(_GETTERS, 0)}
#: Function names the engine reports for operators and for the macros' expansions.
_ENGINE_OPERATORS = frozenset({*_OPERATORS, *_LOGICAL, "-_", "_[_]", "_?_:_",
                               "@not_strictly_false"})
_RESULTS: dict[str, _Type] = {
    **dict.fromkeys(("_==_", "_!=_", "_<_", "_<=_", "_>_", "_>=_", "@in", "contains",
                     "startsWith", "endsWith", "matches"), "bool"),
    **dict.fromkeys(("size", "int", *_GETTERS), "int"),
    "uint": "uint", "double": "double", "string": "string", "bytes": "bytes",
    "timestamp": "timestamp", "duration": "duration", "type": "type", "dyn": DYN,
}
_SAME_AS_OPERAND = frozenset({"_+_", "_-_", "_*_", "_/_", "_%_", "-_"})


def _static_result(name: str, kinds: list[_Type]) -> _Type:
    """The result type of ``name`` over ``kinds`` as far as it is known without the engine."""
    if name in _RESULTS:
        return _RESULTS[name]
    if name == "_[_]":
        container = kinds[0]
        if isinstance(container, tuple) and container[0] in ("list", "map"):
            return container[-1]
        return DYN
    if name in _SAME_AS_OPERAND:
        known = [kind for kind in kinds if kind != DYN]
        if known and all(kind == known[0] for kind in known) and known[0] in (
                "int", "uint", "double", "string", "bytes"):
            return known[0]
    return DYN


# --- cost: polynomials in the size of the dynamic data ---------------------------------------

Poly = tuple[int, ...]
_ONE: Poly = (1,)
_DYNAMIC: Poly = (0, 1)


def _plus(a: Poly, b: Poly) -> Poly:
    longest = max(len(a), len(b))
    return tuple((a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0)
                 for i in range(longest))


def _times(a: Poly, b: Poly) -> Poly:
    result = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            result[i + j] += x * y
    return tuple(result)


def _at(poly: Poly, size: int) -> int:
    return sum(coefficient * size ** power for power, coefficient in enumerate(poly))


# --- the checks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Info:
    """What is known of a node's value: its type; the path into the input it reads, if it is
    one (the first step a variable, or ``("@", loop)`` for an element of a loop's range); and,
    for a collection, a bound on its size."""

    type: _Type
    path: tuple[Any, ...] | None = None
    size: Poly | None = None


@dataclass(frozen=True)
class _Loop:
    """A comprehension: how many times it runs, and whether its range is a path into the
    input (so the ranges of its elements' parts are disjoint, and together no larger than the
    data)."""

    runs: Poly
    pure: bool


@dataclass(frozen=True)
class _Bound:
    """A comprehension variable."""

    type: _Type
    loop: int
    keys: bool


#: What an expression reads of a variable: all of it (None), or its fields, each all of it
#: (None) or only the keys it names (a map field read as ``agent.labels.env``).
Used = tuple[tuple[str, frozenset[str] | None], ...] | None


@dataclass
class _Findings:
    """What the checks learned: what is read of each variable, the estimated steps, and the
    comprehension variables."""

    fields: dict[str, Used]
    steps: Poly
    bound_names: frozenset[str]


class _Checker:
    """Names, functions, types and cost of one expression, for one scope."""

    def __init__(self, source: str, scope: str) -> None:
        self.source = source
        self.scope = scope
        self.roots = {name: _ROOTS[name] for name in VARIABLES[scope]}
        self.fields: dict[str, dict[str, set[str] | None] | None] = {}
        self.env: dict[str, _Bound] = {}
        self.loops: list[_Loop] = []
        self.steps: Poly = ()
        self.names: set[str] = set()

    def check(self, tree: Node) -> _Findings:
        info = self.visit(tree, _ONE, 0)
        if info.type not in ("bool", DYN):
            self.fail(f"the expression returns {_describe(info.type)}, not bool", tree)
        return _Findings(
            fields={name: None if used is None else tuple(sorted(
                (key, None if keys is None else frozenset(keys)) for key, keys in used.items()))
                for name, used in self.fields.items()},
            steps=self.steps, bound_names=frozenset(self.names))

    def fail(self, message: str, node: Node | int) -> NoReturn:
        offset = node if isinstance(node, int) else node.offset
        raise ExpressionError(message, self.source, offset)

    def visit(self, node: Node, runs: Poly, depth: int) -> _Info:
        self.steps = _plus(self.steps, runs)
        handler: Callable[[Node, Poly, int], _Info] = getattr(self, f"_{node.kind}")
        return handler(node, runs, depth)

    # leaves

    def _lit(self, node: Node, runs: Poly, depth: int) -> _Info:
        return _Info(node.name)

    def _ident(self, node: Node, runs: Poly, depth: int) -> _Info:
        info = self._root(node)
        if info is not None:
            self.fields[node.name] = None
            return info
        if node.name in self.env:
            bound = self.env[node.name]
            return _Info(bound.type, None if bound.keys else ("@", bound.loop))
        if node.name in TYPE_NAMES:
            return _Info("type")
        self.fail(self._unknown_name(node.name), node)

    def _root(self, node: Node) -> _Info | None:
        """The variable ``node`` names, if it is a variable of the scope."""
        if node.kind != "ident" or node.name not in self.roots or node.name in self.env:
            return None
        self.fields.setdefault(node.name, {})
        return _Info(self.roots[node.name], (node.name,))

    def _unknown_name(self, name: str) -> str:
        seen = ", ".join(VARIABLES[self.scope])
        if name in _ROOTS:
            return f"'{name}' is not available to {self.scope} policies, which see {seen}"
        return f"unknown variable '{name}'; {self.scope} policies see {seen}"

    # fields

    def _operand(self, node: Node, runs: Poly, depth: int) -> tuple[_Info, tuple[str, ...]]:
        """The value a field is read from, and where it comes from: ``(variable,)`` for a
        variable, ``(variable, field)`` for a map field of one read by name, else ``()``."""
        info = self._root(node)
        if info is not None:
            self.steps = _plus(self.steps, runs)
            return info, (node.name,)
        named = self._map_field(node)
        if named is None:
            return self.visit(node, runs, depth), ()
        root, name = named
        operand = self._root(node.target or node.args[0])
        assert operand is not None
        self.steps = _plus(self.steps, _times(runs, (len(node.args) + 2,)))
        self._use(root, name, whole=False)
        return self._field(operand, name, node), named

    def _map_field(self, node: Node) -> tuple[str, str] | None:
        """``(variable, field)`` when ``node`` reads a map field of a variable by name."""
        target, name = node.target, node.name
        if node.kind == "call" and node.name == "_[_]" and node.args[1].kind == "lit":
            target, name = node.args[0], node.args[1].value or ""
        elif node.kind != "select":
            return None
        if target is None or target.kind != "ident" or self._root(target) is None:
            return None
        kind = dict(self.roots[target.name][2]).get(name)
        return (target.name, name) if _is_map(kind) and not _is_object(kind) else None

    def _use(self, root: str, name: str, *, whole: bool, key: str | None = None) -> None:
        """Record that the expression reads ``name`` of the variable ``root``: all of it, or
        (for a map field read by name) the ``key`` it names."""
        used = self.fields[root]
        if used is None:
            return
        if whole:
            used[name] = None
            return
        keys = used.setdefault(name, set())
        if keys is not None and key is not None:
            keys.add(key)

    def _read(self, origin: tuple[str, ...], name: str) -> None:
        """Record the read of ``name`` from a value of the given ``origin``."""
        if len(origin) == 1:
            self._use(origin[0], name, whole=True)
        elif len(origin) == 2:
            self._use(origin[0], origin[1], whole=False, key=name)

    def _field(self, operand: _Info, name: str, node: Node) -> _Info:
        """The field ``name`` of ``operand``."""
        kind = operand.type
        path = None if operand.path is None else (*operand.path, name)
        if _is_object(kind):
            found = dict(kind[2])
            if name not in found:
                self.fail(_no_field(kind, name), node)
            return _Info(found[name], path, _size(found[name], path))
        if _is_map(kind):
            return _Info(kind[2], path, _size(kind[2], path))
        if kind == DYN:
            return _Info(DYN, path, _DYNAMIC)
        self.fail(f"cannot read the field '{name}' of {_describe(kind)}", node)

    def _select(self, node: Node, runs: Poly, depth: int) -> _Info:
        assert node.target is not None
        operand, origin = self._operand(node.target, runs, depth)
        self._read(origin, node.name)
        return self._field(operand, node.name, node)

    def _has(self, node: Node, runs: Poly, depth: int) -> _Info:
        select = node.target
        assert select is not None and select.target is not None
        operand, origin = self._operand(select.target, runs, depth)
        if not (operand.type == DYN or _is_map(operand.type)):
            self.fail(f"has() tests a field of a map, not of {_describe(operand.type)}", select)
        self._read(origin, select.name)
        self._field(operand, select.name, select)
        return _Info("bool")

    # calls

    def _call(self, node: Node, runs: Poly, depth: int) -> _Info:
        if node.name == "_[_]":
            return self._index(node, runs, depth)
        if node.name in _LOGICAL or node.name == "_?_:_":
            return self._logical(node, runs, depth)
        infos = [self.visit(arg, runs, depth)
                 for arg in ((node.target,) if node.target else ()) + node.args]
        self._check_function(node)
        self._linear_cost(node, infos, runs)
        return self._typed_call(node, infos)

    def _check_function(self, node: Node) -> None:
        if node.name in _OPERATORS or node.name == "-_":
            return
        table = MEMBER_FUNCTIONS if node.target is not None else GLOBAL_FUNCTIONS
        if node.name not in table:
            self.fail(_unknown_function(node.name, node.target is not None), node)
        if len(node.args) != table[node.name]:
            self.fail(f"{node.name}() takes {table[node.name]} argument(s) here, not "
                      f"{len(node.args)}", node)

    def _typed_call(self, node: Node, infos: list[_Info]) -> _Info:
        kinds = [info.type for info in infos]
        static = _static_result(node.name, kinds)
        size = _collection_size(infos, node.name)
        operands = [*((node.target,) if node.target is not None else ()), *node.args]
        constant = all(operand.kind == "lit" for operand in operands)
        if node.name == "matches" and node.args[0].kind == "lit":
            self._check_pattern(node.args[0])
        if node.name == "dyn" or not (constant or all(_known(kind) for kind in kinds)):
            return _Info(static, size=size)
        texts = [operand.text for operand in operands] if constant else \
            [_sample(kind) or "" for kind in kinds]
        error, found = _probe(_render(node.name, node.target is not None, texts), node.name,
                              constant)
        if error is not None:
            self.fail(error or _no_overload(node.name, kinds), node)
        if found == DYN or (isinstance(found, tuple) and isinstance(static, tuple)):
            found = static
        return _Info(found, size=size)

    def _check_pattern(self, pattern: Node) -> None:
        """A literal regular expression compiles (or the call fails on every evaluation)."""
        error, _ = _probe(f"''.matches({pattern.text})", "matches", True)
        if error:
            self.fail(error, pattern)

    def _linear_cost(self, node: Node, infos: list[_Info], runs: Poly) -> None:
        """Operators that walk whole collections cost a step per element: ``in`` a list,
        comparing or concatenating two collections."""
        if node.name == "@in" and not _is_map(infos[1].type):
            self.steps = _plus(self.steps, _times(runs, _size_of(infos[1])))
        elif node.name in ("_==_", "_!=_", "_+_") and all(
                _is_collection(info.type) for info in infos):
            for info in infos:
                self.steps = _plus(self.steps, _times(runs, _size_of(info)))

    def _index(self, node: Node, runs: Poly, depth: int) -> _Info:
        container, key = node.args
        operand, origin = self._operand(container, runs, depth)
        index = self.visit(key, runs, depth)
        literal = key.value if key.kind == "lit" else None
        if literal is not None:
            self._read(origin, literal)
        elif len(origin) == 1:
            self.fields[origin[0]] = None
        elif len(origin) == 2:
            self._use(*origin, whole=True)
        if literal is not None and (origin or _is_object(operand.type)):
            return self._field(operand, literal, key)
        info = self._typed_call(node, [operand, index])
        if literal is not None and operand.path is not None:
            return replace(info, path=(*operand.path, literal))
        return info

    def _logical(self, node: Node, runs: Poly, depth: int) -> _Info:
        infos = [self.visit(arg, runs, depth) for arg in node.args]
        conditions = infos[:1] if node.name == "_?_:_" else infos
        for arg, info in zip(node.args, conditions, strict=False):
            if info.type not in ("bool", DYN):
                symbol = _LOGICAL.get(node.name, "?:")
                self.fail(f"'{symbol}' needs bool, not {_describe(info.type)}", arg)
        if node.name != "_?_:_":
            return _Info("bool")
        then, otherwise = infos[1], infos[2]
        same = then.type == otherwise.type
        return _Info(then.type if same else DYN, size=_larger(then.size, otherwise.size))

    # collections

    def _list(self, node: Node, runs: Poly, depth: int) -> _Info:
        infos = [self.visit(arg, runs, depth) for arg in node.args]
        return _Info(("list", _common([info.type for info in infos])), size=(len(infos),))

    def _map(self, node: Node, runs: Poly, depth: int) -> _Info:
        infos = [self.visit(arg, runs, depth) for arg in node.args]
        keys, values = [info.type for info in infos[::2]], [info.type for info in infos[1::2]]
        return _Info(("map", _common(keys), _common(values)), size=(len(keys),))

    def _compr(self, node: Node, runs: Poly, depth: int) -> _Info:
        assert node.target is not None
        self._check_loop(node, depth)
        source = self.visit(node.target, runs, depth)
        element, keys = self._element(source, node.target)
        iterations = self._iterations(source, runs)
        self.loops.append(_Loop(runs, source.path is not None and (
            source.path[0] != "@" or self.loops[source.path[1]].pure)))
        self.steps = _plus(self.steps, iterations)
        saved = self.env.get(node.var)
        self.env[node.var] = _Bound(element, len(self.loops) - 1, keys)
        self.names.add(node.var)
        bodies = [self.visit(body, iterations, depth + 1) for body in node.args]
        self._restore(node.var, saved)
        return self._comprehension_result(node, bodies, element, source)

    def _check_loop(self, node: Node, depth: int) -> None:
        if len(self.loops) >= MAX_COMPREHENSIONS:
            self.fail(f"more than {MAX_COMPREHENSIONS} comprehensions (all, exists, "
                      "exists_one, map, filter)", node)
        if depth >= MAX_COMPREHENSION_DEPTH:
            self.fail(f"comprehensions nest deeper than {MAX_COMPREHENSION_DEPTH} levels", node)
        if node.var in self.roots or node.var in _ROOTS:
            self.fail(f"the comprehension variable '{node.var}' hides the policy variable",
                      node)

    def _element(self, source: _Info, node: Node) -> tuple[_Type, bool]:
        kind = source.type
        if kind == DYN:
            return DYN, False
        if kind[0] == "list":
            return kind[1], False
        if kind[0] == "map":
            return kind[1], True
        if kind[0] == "object":
            return "string", True
        self.fail(f"cannot iterate over {_describe(kind)}", node)

    def _iterations(self, source: _Info, runs: Poly) -> Poly:
        """How many times the body runs in all: the range's size each time the comprehension
        runs; or, when the range is part of an element of a pure enclosing loop's range, the
        size of the data each time that loop runs (the parts of distinct elements are
        disjoint)."""
        path = source.path
        if path is not None and path[0] == "@" and self.loops[path[1]].pure:
            return _times(self.loops[path[1]].runs, _DYNAMIC)
        return _times(runs, _size_of(source))

    def _restore(self, name: str, saved: _Bound | None) -> None:
        if saved is None:
            del self.env[name]
        else:
            self.env[name] = saved

    def _comprehension_result(self, node: Node, bodies: list[_Info], element: _Type,
                              source: _Info) -> _Info:
        predicates = bodies[:-1] if node.name == "map" else bodies
        for body, info in zip(node.args, predicates, strict=False):
            if info.type not in ("bool", DYN):
                self.fail(f"the condition of {node.name}() must be bool, not "
                          f"{_describe(info.type)}", body)
        if node.name == "map":
            return _Info(("list", bodies[-1].type), size=_size_of(source))
        if node.name == "filter":
            return _Info(("list", element), size=_size_of(source))
        return _Info("bool")


def _no_field(kind: _Type, name: str) -> str:
    fields = [key for key, _ in kind[2]]
    close = difflib.get_close_matches(name, fields, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; its fields are {', '.join(fields)}"
    return f"{kind[1]} has no field '{name}'{hint}"


def _unknown_function(name: str, member: bool) -> str:
    if member and name in GLOBAL_FUNCTIONS:
        return f"{name}() is called as {name}(x), not on a value"
    if not member and name in MEMBER_FUNCTIONS:
        return f"{name}() is called on a value, as x.{name}(...)"
    return f"unknown function '{name}'"


def _no_overload(name: str, kinds: list[_Type]) -> str:
    described = " and ".join(_describe(kind) for kind in kinds)
    if name in _OPERATORS or name in ("-_", "_[_]"):
        symbol = {"-_": "-", "_[_]": "[]"}.get(name) or _OPERATORS[name]
        return f"no '{symbol}' for {described}"
    return f"no {name}() for {described}"


def _is_object(kind: _Type) -> bool:
    return isinstance(kind, tuple) and kind[0] == "object"


def _is_map(kind: _Type) -> bool:
    return isinstance(kind, tuple) and kind[0] in ("map", "object")


def _is_collection(kind: _Type) -> bool:
    return kind == DYN or (isinstance(kind, tuple) and kind[0] in ("list", "map"))


def _size(kind: _Type, path: tuple[Any, ...] | None) -> Poly | None:
    """The bound on a field's size: declared, the number of an object's fields, or dynamic."""
    if isinstance(kind, tuple) and kind[0] == "object":
        return (len(kind[2]),)
    if not _is_collection(kind):
        return None
    dotted = ".".join(str(step) for step in path) if path and path[0] != "@" else ""
    return (BOUNDS[dotted],) if dotted in BOUNDS else _DYNAMIC


def _size_of(info: _Info) -> Poly:
    return info.size if info.size is not None else _DYNAMIC


def _collection_size(infos: list[_Info], name: str) -> Poly | None:
    if name == "_+_" and all(info.size is not None for info in infos):
        return _plus(*(_size_of(info) for info in infos))
    return None


def _larger(a: Poly | None, b: Poly | None) -> Poly | None:
    if a is None or b is None:
        return None
    return _plus(a, b)


def _common(kinds: list[_Type]) -> _Type:
    return kinds[0] if kinds and all(kind == kinds[0] for kind in kinds) else DYN


def _cross_check(source: str, program: Any, found: _Findings) -> None:
    """Refuse what the engine sees referenced that the checks did not account for."""
    known_names = set(found.fields) | found.bound_names | TYPE_NAMES
    for name in program.variables():
        if name.lstrip(".") not in known_names:
            raise ExpressionError(f"unknown variable '{name}'", source, _first(source, name))
    allowed = _ENGINE_OPERATORS | set(GLOBAL_FUNCTIONS) | set(MEMBER_FUNCTIONS)
    for name in program.functions():
        if name not in allowed:
            raise ExpressionError(f"unknown function '{name}'", source, _first(source, name))


def _first(source: str, name: str) -> int:
    found = re.search(rf"\b{re.escape(name)}\b", source)
    return found.start() if found else 0


# --- the program the engine runs -------------------------------------------------------------


def _fast_program(source: str, tree: Node, checked: Any) -> Any:
    """The engine's program with every field selection ``x.f`` read as ``x['f']``.

    Same meaning (a missing key is the same error), but the engine copies the selected value
    on a selection and not on an index, which makes selecting a large part of a parsed
    configuration cost its size on every evaluation. Falls back to the program as written
    should the rewritten one reference anything else.
    """
    edits = sorted(_selections(tree))
    if not edits:
        return checked
    parts, at = [], 0
    for start, end, name in edits:
        parts += [source[at:start], f"['{name}']"]
        at = end
    try:
        fast = engine().compile("".join(parts) + source[at:])
    except ValueError:  # pragma: no cover - the rewrite keeps the syntax
        return checked
    same = set(fast.variables()) == set(checked.variables()) and \
        set(fast.functions()) - {"_[_]"} == set(checked.functions()) - {"_[_]"}
    return fast if same else checked


def _selections(node: Node) -> Iterator[tuple[int, int, str]]:
    """The ``.field`` selections of the tree (not those has() tests: they stay selections)."""
    if node.kind == "select":
        yield (*node.span, node.name)
    target = node.target
    if node.kind == "has" and target is not None:
        target = target.target
    for child in (*node.args, *((target,) if target is not None else ())):
        yield from _selections(child)


# --- evaluation ------------------------------------------------------------------------------

#: What the engine raises for an evaluation error (a Rust panic surfaces as pyo3's
#: PanicException, handled apart: it derives from BaseException).
_ENGINE_ERRORS = (ValueError, TypeError, RuntimeError, LookupError, ArithmeticError)
#: Engine contexts kept per thread, each holding the variables shared by many evaluations.
CONTEXT_CACHE_SIZE = 8
_local = threading.local()


def _evaluate(compiled: Compiled, variables: dict[str, Any]) -> Verdict:
    missing = sorted(name for name in compiled.variables if variables.get(name) is None)
    if missing:
        return Verdict(False, f"no value for the variable '{missing[0]}'")
    over = _over_budget(compiled, variables)
    if over is not None:
        return Verdict(False, over)
    try:
        result = _run(compiled, variables)
    except _ENGINE_ERRORS as exc:
        return Verdict(False, _message(exc))
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        return Verdict(False, "the engine failed to evaluate the expression")
    if result is True:
        return ALLOWED
    if result is False:
        return DENIED
    return Verdict(False, f"the expression returned {_value_type(result)}, not a bool")


def _over_budget(compiled: Compiled, variables: dict[str, Any]) -> str | None:
    """Why the expression may not run over these inputs: its cost estimate for their size."""
    if len(compiled._steps) < 2:
        return None
    size = _dynamic_size(compiled, variables)
    steps = _at(compiled._steps, size)
    if steps <= MAX_COST:
        return None
    return (f"the expression may take {steps} steps over these inputs ({size} values); "
            f"at most {MAX_COST} are allowed")


def _dynamic_size(compiled: Compiled, variables: dict[str, Any]) -> int:
    """How many values the dynamic data the expression reads holds."""
    size = 0
    for name, used in compiled._fields:
        value = variables[name]
        if name == "config" and isinstance(value, dict) and isinstance(value.get("values"), int):
            size = max(size, value["values"])
        elif isinstance(value, dict):
            parts = value.values() if used is None else (value.get(key) for key, _ in used)
            size = max(size, sum(_count(part) for part in parts))
    return size


def _count(value: Any) -> int:
    stack, count = [value], 0
    while stack:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _run(compiled: Compiled, variables: dict[str, Any]) -> Any:
    """Run the program: the shared variables (all but ``agent``) through a cached engine
    context, converted once; the agent through the context's resolver."""
    values = {name: _prune(variables[name], used) for name, used in compiled._fields}
    agent = values.pop("agent", None)
    if not values:
        return compiled._program.execute({} if agent is None else {"agent": agent})
    context = _context(compiled, variables, values)
    if agent is not None:
        context.set_variable_resolver(lambda name: agent if name == "agent" else None)
    return compiled._program.execute(context)


def _prune(value: Any, used: Used) -> Any:
    """Only what the expression reads: the engine converts every value it is given."""
    if used is None or not isinstance(value, dict):
        return value
    return {name: _only(value[name], keys) for name, keys in used if name in value}


def _only(value: Any, keys: frozenset[str] | None) -> Any:
    if keys is None or not isinstance(value, dict):
        return value
    return {key: value[key] for key in keys if key in value}


def _context(compiled: Compiled, originals: dict[str, Any], values: dict[str, Any]) -> Any:
    cache: OrderedDict[Any, tuple[tuple[Any, ...], Any]] = \
        _local.__dict__.setdefault("contexts", OrderedDict())
    held = tuple(originals[name] for name in sorted(values))
    key = (compiled._fields, tuple(id(value) for value in held))
    entry = cache.get(key)
    if entry is not None and all(a is b for a, b in zip(entry[0], held, strict=True)):
        cache.move_to_end(key)
        return entry[1]
    context = engine().Context(values)
    cache[key] = (held, context)
    if len(cache) > CONTEXT_CACHE_SIZE:
        cache.popitem(last=False)
    return context


def _message(exc: BaseException) -> str:
    """The engine's error, in one sentence."""
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(". ")[0].rstrip(".:")


def _value_type(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "double", str: "string", bytes: "bytes",
             list: "list", dict: "map", type(None): "null"}
    return names.get(type(value), type(value).__name__)
