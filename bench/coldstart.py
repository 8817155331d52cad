"""Cold start, measured in fresh interpreters, as ratios to ``import boto3`` alone.

Reports the median of several runs of:
  * ``import boto3`` (the baseline every Lambda pays anyway),
  * ``import app``,
  * ``import app`` plus one authenticated request through the handler, with a
    personal access token and with an OIDC token (which also loads pyjwt and
    cryptography, and fetches the JWKS).
DynamoDB is moto's server in this process, reached over HTTP from the children
(``AWS_ENDPOINT_URL``), so nothing but Ampora's own imports lands in a child.
Target: ``import app`` at most 1.5x ``import boto3``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{request}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "total": t2 - t0, "status": status}}))
"""

REQUEST = r"""
event = {{
    "resource": "/api/tenant", "path": "/api/tenant", "httpMethod": "GET",
    "headers": {{"Authorization": "Bearer {token}", "Host": "bench"}},
    "multiValueHeaders": {{}}, "queryStringParameters": None,
    "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
    "requestContext": {{"resourcePath": "/api/tenant", "httpMethod": "GET", "path": "/api/tenant",
                        "requestId": "bench", "identity": {{"sourceIp": "127.0.0.1"}}}},
    "body": None, "isBase64Encoded": False,
}}
status = app.app(event, None)["statusCode"]
"""


def _env(endpoint: str, authority: str) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AMPORA_TABLE_PREFIX": "bench-", "AMPORA_CURSOR_SECRET": "bench",
            "AMPORA_OIDC_AUTHORITY": authority, "AMPORA_LOG_LEVEL": "ERROR",
            "PYTHONDONTWRITEBYTECODE": "0"}


def _child(code: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _median(code: str, env: dict[str, str], key: str) -> float:
    _child(code, env)  # warm the OS file cache and .pyc files
    runs = [_child(code, env) for _ in range(RUNS)]
    failed = [r["status"] for r in runs if r["status"] not in (0, 200)]
    if failed:
        raise SystemExit(f"the benchmarked request failed with status {failed[0]}")
    return statistics.median(r[key] for r in runs)


def _serve(documents: dict[str, Any]) -> str:
    """Serve ``documents`` (path → JSON) over HTTP, like an IdP; return the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(documents[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def _seed(endpoint: str, authority: str) -> str:
    """Create the tables on moto's server and a PAT; return the PAT."""
    os.environ.update(_env(endpoint, authority))
    sys.path.insert(0, str(ROOT))
    import app  # noqa: F401
    from chalicelib.bootstrap import all_models, bootstrap
    from chalicelib.core.access import Principal, Role
    from chalicelib.core.db import create_tables
    from chalicelib.tokens import service
    from chalicelib.tokens.schemas import ApiTokenCreate

    bootstrap()
    create_tables(all_models())
    admin = Principal(tenant="bench", subject="bench", role=Role.ADMIN)
    return service.create(admin, ApiTokenCreate(name="bench", role="Viewer")).token


def _oidc_token(authority: str) -> tuple[str, dict[str, Any]]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "b1"}
    claims = {"iss": authority, "aud": "ampora", "sub": "bench", "role": "Viewer",
              "tenant": "bench", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "b1"}), {"keys": [jwk]}


def main() -> None:
    """Run every measurement and print the figures and ratios."""
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto._server.server_port}"
    documents: dict[str, Any] = {}
    authority = _serve(documents)
    token_jwt, jwks = _oidc_token(authority)
    documents.update({"/jwks": jwks, "/.well-known/openid-configuration": {
        "issuer": authority, "jwks_uri": f"{authority}/jwks"}})
    try:
        pat = _seed(endpoint, authority)
        env = _env(endpoint, authority)
        bare, app_only = "status = 0", "import app"
        figures = {
            "import boto3": _median(CHILD.format(imports="import boto3", request=bare), env,
                                    "import"),
            "import app": _median(CHILD.format(imports=app_only, request=bare), env, "import"),
            "import app + PAT request": _median(CHILD.format(
                imports=app_only, request=REQUEST.format(token=pat)), env, "total"),
            "import app + OIDC request": _median(CHILD.format(
                imports=app_only, request=REQUEST.format(token=token_jwt)), env, "total"),
        }
    finally:
        moto.stop()
    _report(figures)


def _report(figures: dict[str, float]) -> None:
    base = figures["import boto3"]
    print(f"cold start, median of {RUNS} fresh interpreters (seconds, ratio to import boto3)")
    for name, seconds in figures.items():
        print(f"  {name:<28} {seconds * 1000:8.1f} ms   {seconds / base:5.2f}x")
    verdict = "meets" if figures["import app"] / base <= 1.5 else "MISSES"
    print(f"import app {verdict} the 1.5x target")


if __name__ == "__main__":
    main()
