"""Synthesizes the CDK app the way a user does (``python infra/app.py -c ...``) into a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "infra" / "app.py"


@dataclass(frozen=True)
class Synth:
    """One synthesized cloud assembly: its stack template and where its assets are."""

    outdir: Path
    stack: str
    template: dict[str, Any]
    seconds: float

    @property
    def resources(self) -> dict[str, Any]:
        """The template's resources by logical id."""
        return dict(self.template["Resources"])

    def of_type(self, kind: str) -> dict[str, Any]:
        """The resources of one CloudFormation type, by logical id."""
        return {rid: r for rid, r in self.resources.items() if r["Type"] == kind}

    @property
    def swagger(self) -> dict[str, Any]:
        """The REST API's definition as deployed."""
        return dict(self.resources["RestAPI"]["Properties"]["DefinitionBody"])

    def file_assets(self) -> list[Path]:
        """The files CDK uploads with the stack (the Lambda deployment package)."""
        manifest = json.loads((self.outdir / f"{self.stack}.assets.json").read_text())
        return [self.outdir / asset["source"]["path"] for asset in manifest["files"].values()
                if asset["source"]["path"].endswith(".zip")]


def _environment(outdir: Path) -> dict[str, str]:
    """The test process's environment minus Ampora's own settings (infra sets those)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPORA_")}
    env.update(CDK_OUTDIR=str(outdir), JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1")
    return env


def synth(workdir: Path, **context: str) -> Synth:
    """Run the CDK app with ``-c key=value`` for each of ``context``; its assembly."""
    outdir = workdir / "cdk.out"
    args = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ENTRY), *args], cwd=workdir, check=False,
                          env=_environment(outdir), capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise AssertionError(f"synth failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    stack = context.get("stage", "dev")
    template = json.loads((outdir / f"{stack}.template.json").read_text())
    return Synth(outdir=outdir, stack=stack, template=template, seconds=seconds)
