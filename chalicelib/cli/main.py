"""``ampora``: run the local stack and mint local sign-in tokens.

Subcommands import what they need when they run, so ``ampora --help`` and
``ampora dev-token`` start without loading the app.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

ROLES = ("Admin", "Operator", "Viewer")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _port(raw: str) -> int:
    from chalicelib.local.config import LocalConfigError, check_port

    try:
        return check_port(raw)
    except LocalConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _ttl(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds, got {raw!r}"
                                         ) from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _tenant(raw: str) -> str:
    if not _TENANT.match(raw):
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a tenant id (letters, digits, '.', '_', '-'; at most 64)")
    return raw


def _role(raw: str) -> str:
    for role in ROLES:
        if raw.lower() == role.lower():
            return role
    raise argparse.ArgumentTypeError(f"unknown role {raw!r} (choose from {', '.join(ROLES)})")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``ampora`` and its subcommands."""
    root = argparse.ArgumentParser(prog="ampora", description="Ampora control plane tools.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = commands.add_parser("dev", help="run the local stack (API, OIDC issuer, Swagger UI)")
    dev.add_argument("--port", type=_port, help="port on 127.0.0.1 (default $AMPORA_PORT or 8000)")
    token = commands.add_parser("dev-token", help="print a bearer token the local stack accepts")
    token.add_argument("--role", required=True, type=_role, metavar="|".join(ROLES))
    token.add_argument("--sub", default="dev-user", help="subject (default dev-user)")
    token.add_argument("--tenant", default="default", type=_tenant,
                       help="tenant id (default 'default')")
    token.add_argument("--ttl", default=3600, type=_ttl, help="lifetime in seconds (default 3600)")
    token.add_argument("--port", type=_port,
                       help="port of the local stack (default $AMPORA_PORT or 8000)")
    return root


def run_dev(args: argparse.Namespace) -> int:
    """``ampora dev``: serve until Ctrl-C."""
    from chalicelib.local.config import LocalConfig
    from chalicelib.local.server import serve

    try:
        return serve(LocalConfig.from_env(port=args.port))
    except KeyboardInterrupt:  # Ctrl-C before the server was listening
        return 130


def run_dev_token(args: argparse.Namespace) -> int:
    """``ampora dev-token``: print a signed JWT from the local issuer."""
    from chalicelib.core.settings import Settings
    from chalicelib.local import oidc
    from chalicelib.local.config import LocalConfig

    config = LocalConfig.from_env(port=args.port)
    claims = oidc.dev_claims(authority=config.authority,
                             audience=Settings.from_env().oidc_audience, role=args.role,
                             sub=args.sub, tenant=args.tenant, ttl=args.ttl)
    print(oidc.sign(oidc.load_signing_key(config.home), claims))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ampora`` console script; the exit code."""
    from chalicelib.local.config import LocalConfigError

    args = parser().parse_args(argv)
    handlers = {"dev": run_dev, "dev-token": run_dev_token}
    try:
        return handlers[args.command](args)
    except LocalConfigError as exc:
        print(f"ampora: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
