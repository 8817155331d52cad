"""CDK entry point: ``cd infra && ../.venv/bin/python app.py [-c key=value ...]`` writes cdk.out/.

Also what ``cdk synth`` runs (see cdk.json). Context keys and defaults: infra/config.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The repo root, not infra/, must come first: ``import app`` means the Chalice app.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import aws_cdk as cdk  # noqa: E402

from infra.config import DEFAULTS, StageSettings  # noqa: E402


def _cli_context(argv: list[str]) -> dict[str, str]:
    """``-c key=value`` pairs given to ``python app.py`` directly (the cdk CLI uses env)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    pairs = parser.parse_args(argv).context
    return dict(pair.split("=", 1) for pair in pairs)


def main(argv: list[str]) -> cdk.App:
    """Synthesize the stack of the stage named in context into cdk.out."""
    outdir = os.environ.get("CDK_OUTDIR") or str(HERE / "cdk.out")
    app = cdk.App(outdir=outdir, context=_cli_context(argv), analytics_reporting=False)
    settings = StageSettings.from_context(
        {key: app.node.try_get_context(key) for key in DEFAULTS})
    # Chalice needs a region to package; the app imported here names its tables as deployed.
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.region)
    os.environ.update(settings.environment())
    from infra.stack import AmporaStack

    AmporaStack(app, settings.stage, settings=settings,
                env=cdk.Environment(region=settings.region))
    app.synth()
    # chalice.out/ is the construct's scratch copy of the package; cdk.out/ now holds the asset.
    shutil.rmtree(Path.cwd() / "chalice.out", ignore_errors=True)
    prune_packages(ROOT / ".chalice" / "deployments")
    return app


def prune_packages(cache: Path, keep: int = 2) -> None:
    """Drop all but the newest ``keep`` of Chalice's cached deployment packages (~30 MB each).

    Chalice keys its cache on requirements.txt *and* the app's files, so every code
    change leaves another full package behind.
    """
    packages = sorted(cache.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in packages[keep:]:
        stale.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1:])
