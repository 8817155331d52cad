"""Route matching as API Gateway does it: a request path against the app's route templates.

At each segment a literal beats ``{param}``, which beats a greedy ``{param+}``.
A path that matches no template is a 404; one that matches a template without
the request's method is a 405 (the template's methods become ``Allow``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

# Segment kinds, in the order API Gateway prefers them.
LITERAL, PARAM, GREEDY = 0, 1, 2


@dataclass(frozen=True)
class Match:
    """A template that matched a path: its parameters and the methods it serves."""

    template: str
    params: dict[str, str]
    methods: frozenset[str] = field(default_factory=frozenset)


def split(path: str) -> list[str]:
    """The segments of a path; a trailing slash is ignored as API Gateway does."""
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


def _kind(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return GREEDY
    if segment.startswith("{") and segment.endswith("}"):
        return PARAM
    return LITERAL


def _name(segment: str) -> str:
    return segment[1:-1].rstrip("+")


def _bind(template: list[str], raw: list[str]) -> tuple[list[int], dict[str, str]] | None:
    """The segment kinds used and the parameters, if ``raw`` fits ``template``."""
    kinds: list[int] = []
    params: dict[str, str] = {}
    for index, segment in enumerate(template):
        kind = _kind(segment)
        if kind == GREEDY:
            rest = raw[index:]
            if not rest:
                return None
            params[_name(segment)] = unquote("/".join(rest))
            return [*kinds, GREEDY], params
        if index >= len(raw) or (kind == LITERAL and unquote(raw[index]) != segment):
            return None
        if kind == PARAM:
            if not raw[index]:
                return None
            params[_name(segment)] = unquote(raw[index])
        kinds.append(kind)
    return (kinds, params) if len(template) == len(raw) else None


class RouteTable:
    """The app's route templates and their methods, resolved like API Gateway."""

    def __init__(self, routes: Mapping[str, Iterable[str]]) -> None:
        self._routes = [(template, split(template), frozenset(m.upper() for m in methods))
                        for template, methods in routes.items()]

    def resolve(self, raw_path: str) -> Match | None:
        """The most specific template matching ``raw_path`` (still percent-encoded)."""
        segments = split(raw_path)
        best: tuple[list[int], Match] | None = None
        for template, parts, methods in self._routes:
            bound = _bind(parts, segments)
            if bound is None:
                continue
            kinds, params = bound
            if best is None or kinds < best[0]:
                best = (kinds, Match(template=template, params=params, methods=methods))
        return None if best is None else best[1]
