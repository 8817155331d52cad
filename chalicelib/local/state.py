"""Files in the local stack's state directory, written so a crash never leaves half a file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

CURSOR_SECRET_FILE = "cursor-secret"  # noqa: S105 - a file name
LOCK_FILE = "lock"


def ensure_home(home: Path) -> Path:
    """Create the state directory (owner-only) if needed, and return it."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    return home


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``: write a temp file, fsync, then rename over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_once(path: Path, data: bytes) -> bytes:
    """Write ``data`` to ``path`` unless it exists; return what the file holds after.

    The complete file is linked into place, so a concurrent reader sees either
    nothing or all of it, and of two racing writers the first one wins.
    """
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
        atomic_write(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def cursor_secret(home: Path) -> str:
    """The local stack's cursor-signing secret: random once, then kept in the state dir."""
    path = ensure_home(home) / CURSOR_SECRET_FILE
    return create_once(path, secrets.token_hex(32).encode()).decode().strip()


class StateInUse(RuntimeError):
    """Another local stack is already running on this state directory."""


def hold_lock(home: Path) -> int:
    """Take the state dir's lock for this process's life (its fd), or raise :class:`StateInUse`."""
    import fcntl

    fd = os.open(ensure_home(home) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StateInUse(f"another 'ampora dev' is using {home}") from exc
    return fd
