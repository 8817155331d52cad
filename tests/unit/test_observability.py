"""Tracing is optional: off, it costs nothing; on, each operation is an X-Ray subsegment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str, **env: str) -> str:
    environment = {**os.environ, "AMPORA_CURSOR_SECRET": "x", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_tracing_off_never_loads_the_xray_sdk() -> None:
    code = ("import sys\nfrom chalicelib.core.observability import traced\n"
            "with traced('op', tenant='t'):\n    pass\nprint('aws_xray_sdk' in sys.modules)")
    assert run(code) == "False"


def test_tracing_on_opens_a_subsegment_per_operation() -> None:
    code = ("from chalicelib.core.observability import traced, tracer\n"
            "with traced('op', tenant='t'):\n    pass\n"
            "print(type(tracer()).__name__)")
    assert run(code, AMPORA_TRACING="1", POWERTOOLS_TRACE_DISABLED="1") == "Tracer"
