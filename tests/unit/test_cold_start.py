"""``import app`` loads only what every route needs; heavy code loads where it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Loaded only by the code that needs them (OIDC, tracing, later git, CEL, OpAMP, X.509).
HEAVY = ("jwt", "cryptography", "aws_xray_sdk", "boto3", "moto", "google.protobuf",
         "dulwich", "cel", "cel.cel", "chalicelib.policies.cel", "pydantic", "yaml")


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    code = "import sys, json, app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "AMPORA_CURSOR_SECRET": "x"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", HEAVY)
def test_import_app_does_not_load(loaded: set[str], module: str) -> None:
    assert module not in loaded


def test_import_app_registers_every_route(loaded: set[str]) -> None:
    assert {"chalice", "chalicelib.core.http", "chalicelib.tokens.routes"} <= loaded
    assert "chalicelib.tokens.service" not in loaded
