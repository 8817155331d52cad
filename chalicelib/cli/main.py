"""``ampora``: run the local stack, mint local sign-in tokens, simulate agents.

Subcommands import what they need when they run, so ``ampora --help`` and
``ampora dev-token`` start without loading the app.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import Any

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
    _simulate_parser(commands)
    return root


def _positive(kind: type) -> Any:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from exc
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {raw}")
        return value

    return parse


def _share(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {raw}")
    return value


def _simulate_parser(commands: Any) -> None:
    sim = commands.add_parser("simulate", help="run N simulated OpAMP agents in this process")
    sim.add_argument("--agents", required=True, type=_positive(int), help="how many agents")
    sim.add_argument("--token", required=True, help="bootstrap token the agents enroll with")
    sim.add_argument("--url", help="OpAMP endpoint (default the local stack's /v1/opamp)")
    sim.add_argument("--fail-share", type=_share, default=0.0,
                     help="share of agents (0..1) that fail to apply remote configs")
    sim.add_argument("--rounds", type=_positive(int),
                     help="exchanges per agent, then stop (default: until Ctrl-C)")
    sim.add_argument("--interval", type=_positive(float),
                     help="seconds between exchanges (default: what the server offers)")
    sim.add_argument("--concurrency", type=_positive(int), default=64,
                     help="requests in flight at once (default 64)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the agents' identities")


def run_simulate(args: argparse.Namespace) -> int:
    """``ampora simulate``: run the fleet and print how it fared."""
    from chalicelib.cli import simulate

    plan = simulate.Plan(url=args.url or simulate.default_url(), token=args.token,
                         agents=args.agents, fail_share=args.fail_share, rounds=args.rounds,
                         concurrency=args.concurrency, seed=args.seed, interval=args.interval)
    return simulate.main(plan)


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
    handlers = {"dev": run_dev, "dev-token": run_dev_token, "simulate": run_simulate}
    try:
        return handlers[args.command](args)
    except LocalConfigError as exc:
        print(f"ampora: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
