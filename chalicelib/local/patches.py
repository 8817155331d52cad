"""Parts of moto replaced while the local stack (or a test) needs them.

A :class:`Patches` is one set of replacements, applied when its first owner installs it and
undone when that owner uninstalls it; one owner at a time (installing another replaces it).
:class:`Installed` gives an owner ``install``/``uninstall`` and the context manager.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar

Owner = TypeVar("Owner")


class Patches(Generic[Owner]):
    """Replacements of moto's attributes, applied by ``apply`` (which calls :meth:`replace`),
    and the owner they serve now."""

    def __init__(self, apply: Callable[[], None]) -> None:
        self._apply = apply
        self._originals: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()
        self.owner: Owner | None = None

    @property
    def active(self) -> bool:
        """Whether the replacements are in place."""
        return bool(self._originals)

    def replace(self, owner: Any, name: str, value: Any) -> Any:
        """Set ``owner.name`` to ``value``; the original."""
        original = getattr(owner, name)
        self._originals.append((owner, name, original))
        setattr(owner, name, value)
        return original

    def restore(self) -> None:
        """Put every original back."""
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    def install(self, owner: Owner) -> None:
        """Apply the replacements (once) and serve ``owner``."""
        with self._lock:
            if not self.active:
                self._apply()
            self.owner = owner

    def uninstall(self, owner: Owner) -> None:
        """Undo the replacements, if ``owner`` is the one served."""
        with self._lock:
            if self.owner is owner:
                self.restore()
                self.owner = None


class Installed:
    """An owner of a :class:`Patches` (its class's ``patches``): install it, or use it as a
    context manager."""

    patches: ClassVar[Patches[Any]]

    def __enter__(self) -> Any:
        self.install()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.uninstall()

    def install(self) -> None:
        """Make moto answer as this instance says (installing it again changes nothing)."""
        self.patches.install(self)

    def uninstall(self) -> None:
        """Give moto back its own behaviour, if this instance is the one installed."""
        self.patches.uninstall(self)
