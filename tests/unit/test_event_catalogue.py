"""The event catalogue (docs/events.md) names exactly the event types the code emits.

The types are read from the source with :mod:`ast` (chalicelib is not imported):

- an *emitter* is ``event_item`` (its ``event_type``), or any function that passes one of
  its own parameters to an emitter's type, as is or as the tail of an f-string
  (``f"rollout.{kind}"``); its *prefix* is what comes before (``rollout.``);
- at every other call of an emitter the type is ``prefix + kind``, the kind being a string
  literal, both branches of a conditional expression, the values of a dict literal it is
  picked from, or a local or module constant holding one of those;
- two indirect kinds are followed: ``(kind, data)`` pairs built in the emitter's module
  (``[("paused", {})]``, looped over at the call), and whole types carried in another
  module's values (an emitter with no prefix: the literals of its families in its package,
  ``f"agent.config.{status}"`` included when ``status`` is checked against constants).

Anything else makes :func:`test_every_emitter_call_is_understood` fail, so an event cannot
slip past unseen: write its kind as a literal, or teach the scanner.

In the catalogue, an event type is a heading whose text is the type in backticks; those under
the "Not emitted yet" section are types asked for but not emitted.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "chalicelib"
CATALOGUE = ROOT / "docs" / "events.md"
#: An event type: lower-case dotted words, hyphens inside words (``rollout.wave-opened``).
TYPE = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)+")
#: A catalogue heading naming one event type.
HEADING = re.compile(r"^#{2,4} `(?P<type>[^`]+)`\s*$")
#: A row of the catalogue's index: its first cell is one event type.
INDEX_ROW = re.compile(r"^\| `(?P<type>[a-z][a-z0-9.-]*)` \|")
NOT_EMITTED = "not emitted yet"

Function = ast.FunctionDef | ast.AsyncFunctionDef


# --- reading the source ------------------------------------------------------------------------

@dataclass(frozen=True)
class Emitter:
    """A function whose event type is ``prefix`` + its argument ``param``."""

    param: str
    index: int | None
    prefix: str


BASE = Emitter(param="event_type", index=None, prefix="")


@dataclass
class Module:
    """One parsed source file, with its module-level string constants."""

    path: str
    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    emitters: dict[str, Emitter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    self.constants.update(_bindings(target, node.value))


@dataclass
class Scan:
    """What the scan found: each type with where it is emitted, and the calls not understood."""

    types: dict[str, set[str]] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)

    def add(self, event_type: str, where: str) -> None:
        self.types.setdefault(event_type, set()).add(where)


def _bindings(target: ast.expr, value: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    if isinstance(target, ast.Name):
        yield target.id, value
    elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) \
            and len(target.elts) == len(value.elts):
        for name, item in zip(target.elts, value.elts, strict=True):
            yield from _bindings(name, item)


def _calls(tree: ast.AST, function: Function | None = None
           ) -> Iterator[tuple[ast.Call, Function | None]]:
    """Every call by a plain name, with the innermost ``def`` around it (lambdas and
    comprehensions see the names of that ``def``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield node, function
        inner = node if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else function
        yield from _calls(node, inner)


def _params(function: Function) -> list[str]:
    arguments = function.args
    return [a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]


def _argument(call: ast.Call, emitter: Emitter) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == emitter.param:
            return keyword.value
    if emitter.index is not None and emitter.index < len(call.args):
        return call.args[emitter.index]
    return None


def _forwarded(arg: ast.expr, function: Function | None) -> tuple[str, str] | None:
    """``(param, added prefix)`` when ``arg`` is a parameter of ``function``, alone or at the
    end of an f-string of literals."""
    if function is None:
        return None
    params = _params(function)
    if isinstance(arg, ast.Name) and arg.id in params:
        return arg.id, ""
    if isinstance(arg, ast.JoinedStr) and arg.values:
        *head, last = arg.values
        if isinstance(last, ast.FormattedValue) and isinstance(last.value, ast.Name) \
                and last.value.id in params and all(
                    isinstance(part, ast.Constant) for part in head):
            return last.value.id, "".join(
                str(part.value) for part in head if isinstance(part, ast.Constant))
    return None


def _assigned(function: Function | None, name: str) -> list[ast.expr]:
    if function is None:
        return []
    return [value for node in ast.walk(function) if isinstance(node, ast.Assign)
            for target in node.targets for bound, value in _bindings(target, node.value)
            if bound == name]


def _checked_against(function: Function | None, name: str) -> list[ast.expr]:
    """The values ``name`` is checked to be among (``name in (A, B)``)."""
    if function is None:
        return []
    return [item for node in ast.walk(function) if isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name) and node.left.id == name
            for op, right in zip(node.ops, node.comparators, strict=True)
            if isinstance(op, ast.In) and isinstance(right, ast.Tuple | ast.List)
            for item in right.elts]


def _strings(expr: ast.expr | None, module: Module, function: Function | None,
             depth: int = 0) -> set[str] | None:
    """The strings ``expr`` may be, or None if the scanner cannot tell."""
    if expr is None or depth > 5:
        return None
    if isinstance(expr, ast.Constant):
        return {expr.value} if isinstance(expr.value, str) else None
    if isinstance(expr, ast.IfExp):
        return _union([expr.body, expr.orelse], module, function, depth)
    if isinstance(expr, ast.Subscript) and isinstance(expr.value, ast.Dict):
        return _union(list(expr.value.values), module, function, depth)
    if isinstance(expr, ast.Name):
        local = _assigned(function, expr.id)
        if local:
            return _union(local, module, function, depth)
        if expr.id in module.constants:
            return _strings(module.constants[expr.id], module, None, depth + 1)
        checked = _checked_against(function, expr.id)
        return _union(checked, module, function, depth) if checked else None
    if isinstance(expr, ast.JoinedStr):
        found = {""}
        for part in expr.values:
            values = _strings(part.value if isinstance(part, ast.FormattedValue) else part,
                              module, function, depth + 1)
            if values is None:
                return None
            found = {head + tail for head in found for tail in values}
        return found
    return None


def _union(exprs: Sequence[ast.expr | None], module: Module, function: Function | None,
           depth: int) -> set[str] | None:
    found: set[str] = set()
    for expr in exprs:
        values = _strings(expr, module, function, depth + 1)
        if values is None:
            return None
        found |= values
    return found


def _functions(tree: ast.AST) -> Iterator[Function]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _emitter_of(call: ast.Call, module: Module) -> Emitter | None:
    assert isinstance(call.func, ast.Name)
    if call.func.id == "event_item":
        return BASE
    return module.emitters.get(call.func.id)


def _find_emitters(modules: list[Module]) -> None:
    """Mark, until nothing changes, the functions that pass a parameter on as an event type."""
    changed = True
    while changed:
        changed = False
        for module in modules:
            for call, function in _calls(module.tree):
                emitter = _emitter_of(call, module)
                arg = None if emitter is None else _argument(call, emitter)
                forwarded = None if arg is None else _forwarded(arg, function)
                if emitter is None or forwarded is None or function is None \
                        or function.name in module.emitters:
                    continue
                param, added = forwarded
                params = _params(function)
                positional = len(function.args.posonlyargs) + len(function.args.args)
                index = params.index(param)
                module.emitters[function.name] = Emitter(
                    param=param, index=index if index < positional else None,
                    prefix=emitter.prefix + added)
                changed = True


def _pairs(module: Module) -> set[str]:
    """The kinds of ``(kind, data)`` pairs written in list literals of the module."""
    return {item.elts[0].value for node in ast.walk(module.tree) if isinstance(node, ast.List)
            for item in node.elts if isinstance(item, ast.Tuple) and len(item.elts) == 2
            and isinstance(item.elts[0], ast.Constant) and isinstance(item.elts[0].value, str)
            and isinstance(item.elts[1], ast.Dict)}


def _unpacked_in_loop(function: Function | None, name: str) -> bool:
    """Whether ``name`` is the first of the names a loop or comprehension unpacks."""
    if function is None:
        return False
    return any(isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Tuple)
               and node.target.elts and isinstance(node.target.elts[0], ast.Name)
               and node.target.elts[0].id == name for node in ast.walk(function))


def _carried(modules: list[Module], package: Path, families: set[str]) -> set[str] | None:
    """Whole types of ``families`` written as values in ``package``'s modules: literals, and
    f-strings whose names the code checks against constants. None if one cannot be read."""
    def family(value: object) -> bool:
        return isinstance(value, str) and value.split(".")[0] in families

    found: set[str] = set()
    for module in (m for m in modules if Path(m.path).parent == package):
        docstrings = {id(node.value) for node in ast.walk(module.tree)
                      if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        found |= {node.value for node in ast.walk(module.tree) if isinstance(node, ast.Constant)
                  and isinstance(node.value, str) and id(node) not in docstrings
                  and family(node.value) and TYPE.fullmatch(node.value)}
        for function in _functions(module.tree):
            for node in ast.walk(function):
                if isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant) \
                        and family(node.values[0].value) and "." in str(node.values[0].value):
                    values = _strings(node, module, function)
                    if values is None:
                        return None
                    found |= values
    return found


def scan(sources: Mapping[str, str]) -> Scan:
    """The event types emitted by the modules ``{path: text}``."""
    modules = [Module(path, ast.parse(text, filename=path)) for path, text in sources.items()]
    _find_emitters(modules)
    result = Scan()
    indirect: list[tuple[Module, ast.Call, Emitter]] = []
    for module in modules:
        for call, function in _calls(module.tree):
            emitter = _emitter_of(call, module)
            if emitter is None:
                continue
            arg = _argument(call, emitter)
            if arg is not None and _forwarded(arg, function) is not None:
                continue  # the kinds come from this function's own callers
            where = f"{module.path}:{call.lineno}"
            kinds = _strings(arg, module, function)
            if kinds is None and isinstance(arg, ast.Name) \
                    and _unpacked_in_loop(function, arg.id):
                kinds = _pairs(module) or None
            if kinds is None and emitter.prefix == "":
                indirect.append((module, call, emitter))
                continue
            if kinds is None:
                result.unresolved.append(f"{where}: {ast.unparse(call)[:80]}")
                continue
            for kind in kinds:
                result.add(emitter.prefix + kind, where)
    for module, call, _emitter in indirect:
        where = f"{module.path}:{call.lineno}"
        package = Path(module.path).parent
        families = {t.split(".")[0] for t, places in result.types.items()
                    if any(p.startswith(module.path + ":") for p in places)}
        carried = _carried(modules, package, families) if families else None
        if not carried:
            result.unresolved.append(f"{where}: {ast.unparse(call)[:80]}")
            continue
        for event_type in carried:
            result.add(event_type, f"{where} (via {package.name}/)")
    return result


def sources() -> dict[str, str]:
    """Every module of chalicelib, by path relative to the repository."""
    return {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
            for path in sorted(SOURCE.rglob("*.py")) if "proto" not in path.parts}


# --- reading the catalogue ---------------------------------------------------------------------

@dataclass
class Catalogue:
    """The event types the catalogue describes, those it says are not emitted yet, and those
    its index lists."""

    emitted: set[str] = field(default_factory=set)
    not_emitted: set[str] = field(default_factory=set)
    index: set[str] = field(default_factory=set)
    text: str = ""


def catalogue(text: str) -> Catalogue:
    """What ``text`` (docs/events.md) says."""
    found = Catalogue(text=text)
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip().lower()
        heading = HEADING.match(line)
        if heading and TYPE.fullmatch(heading["type"]):
            (found.not_emitted if section.startswith(NOT_EMITTED)
             else found.emitted).add(heading["type"])
        row = INDEX_ROW.match(line)
        if row and section.startswith("index"):
            found.index.add(row["type"])
    return found


def differences(found: Scan, doc: Catalogue) -> list[str]:
    """What the catalogue gets wrong about the code (nothing: they agree)."""
    emitted = set(found.types)
    problems = [f"{t} is emitted ({', '.join(sorted(found.types[t]))}) but not described in "
                "docs/events.md" for t in sorted(emitted - doc.emitted - doc.not_emitted)]
    problems += [f"{t} is described in docs/events.md but the code never emits it"
                 for t in sorted(doc.emitted - emitted)]
    problems += [f"{t} is emitted now ({', '.join(sorted(found.types[t]))}): move it out of "
                 "'Not emitted yet'" for t in sorted(doc.not_emitted & emitted)]
    problems += [f"{t} is both described and listed as not emitted yet"
                 for t in sorted(doc.emitted & doc.not_emitted)]
    problems += [f"the index of docs/events.md lacks {t}"
                 for t in sorted(doc.emitted - doc.index)]
    problems += [f"the index of docs/events.md lists {t}, which has no section"
                 for t in sorted(doc.index - doc.emitted)]
    return problems


# --- the tests ---------------------------------------------------------------------------------

SCANNED = scan(sources())
DOCUMENTED = catalogue(CATALOGUE.read_text(encoding="utf-8"))


def test_every_emitter_call_is_understood() -> None:
    assert SCANNED.unresolved == [], (
        "the scanner cannot tell which event type these calls emit; write the kind as a "
        "literal (or a conditional of literals), or teach tests/unit/test_event_catalogue.py")


def test_the_scan_sees_every_family() -> None:
    families = {t.split(".")[0] for t in SCANNED.types}
    assert {"agent", "group", "configuration", "policy", "rollout", "tenant",
            "api-token", "bootstrap-token"} <= families


def test_the_catalogue_describes_exactly_the_emitted_types() -> None:
    assert differences(SCANNED, DOCUMENTED) == []


def test_the_catalogue_names_who_may_read_what() -> None:
    """The hub keeps these families to some roles: the catalogue says which they are."""
    from chalicelib.live import protocol

    for prefix in protocol.RESTRICTED:
        assert f"`{prefix}`" in DOCUMENTED.text


FAKE = '''
from chalicelib.core.events import event_item


def _event(kind, item):
    return event_item(tenant=item.tenant, event_type=f"widget.{kind}", subject="widgets/1",
                      data={}, at=None, event_id="1", random_hex="00")


def explode(item, loud):
    _event("created", item)
    kind = "exploded" if loud else "fizzled"
    _event(kind, item)
    event_item(tenant="t", event_type="widget.gone", subject="s", data={}, at=None,
               event_id="2", random_hex="00")
'''


def test_an_undocumented_event_fails_the_check() -> None:
    found = scan({**sources(), "chalicelib/widgets/service.py": FAKE})
    assert set(found.types) - set(SCANNED.types) == {
        "widget.created", "widget.exploded", "widget.fizzled", "widget.gone"}
    problems = differences(found, DOCUMENTED)
    assert len(problems) == 4
    assert all("not described in docs/events.md" in p for p in problems)
    assert any("widget.exploded is emitted (chalicelib/widgets/service.py:13)" in p
               for p in problems)


def test_an_event_kind_the_scanner_cannot_read_fails_the_check() -> None:
    odd = FAKE + "\n\ndef odd(item, kinds):\n    for kind in kinds:\n        _event(kind, item)\n"
    found = scan({"chalicelib/widgets/service.py": odd})
    line = odd.splitlines().index("        _event(kind, item)") + 1
    assert [u.split(":")[1] for u in found.unresolved] == [str(line)]


def test_a_documented_type_the_code_does_not_emit_fails_the_check() -> None:
    assert "## Token events" in DOCUMENTED.text
    text = DOCUMENTED.text.replace("## Token events", "### `rollout.exploded`\n\n## Token events")
    assert differences(SCANNED, catalogue(text)) == [
        "rollout.exploded is described in docs/events.md but the code never emits it",
        "the index of docs/events.md lacks rollout.exploded"]


def test_a_type_listed_as_not_emitted_must_not_be_emitted() -> None:
    planned = catalogue(DOCUMENTED.text + "\n### `rollout.exploded`\n")
    assert "rollout.exploded" in planned.not_emitted
    assert differences(SCANNED, planned) == []
    now_emitted = catalogue(DOCUMENTED.text + "\n### `rollout.started`\n")
    assert [p.split(" is ")[1].split(" (")[0] for p in differences(SCANNED, now_emitted)] == [
        "emitted now", "both described and listed as not emitted yet"]
