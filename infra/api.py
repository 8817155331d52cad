"""The Chalice app as a CDK construct, with its SAM template rewritten before CDK imports it.

``chalice.cdk.Chalice`` packages the app (``chalice package``) and includes the SAM
template it writes. :class:`AmporaApi` hooks in between: once Chalice has written
``sam.json``, the template gets the gateway's problem responses, one role for all its
functions and, unless the stack is deployed as one function, one function per route.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalice import Chalice as ChaliceApp
from chalice.cdk import Chalice
from constructs import Construct

Rewrite = Callable[[dict[str, Any]], dict[str, Any]]


def load_app(project_dir: Path) -> ChaliceApp:
    """The Chalice app in ``project_dir`` (its ``app.py``): its routes and other functions."""
    root = str(project_dir)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module("app")
    if Path(module.__file__ or "").resolve().parent != project_dir.resolve():
        raise RuntimeError(f"'import app' found {module.__file__}, not {project_dir}/app.py")
    app: ChaliceApp = module.app
    return app


class AmporaApi(Chalice):
    """The Chalice construct, with ``rewrite`` applied to the packaged SAM template."""

    def __init__(self, scope: Construct, construct_id: str, *, source_dir: str,
                 stage_config: dict[str, Any], rewrite: Rewrite) -> None:
        self._rewrite = rewrite
        super().__init__(scope, construct_id, source_dir=source_dir, stage_config=stage_config)

    def _package_app(self) -> None:
        super()._package_app()
        sam = Path(self._sam_package_dir) / "sam.json"
        sam.write_text(json.dumps(self._rewrite(json.loads(sam.read_text())), indent=2))

    @property
    def package_dir(self) -> Path:
        """Where Chalice wrote this synth's ``deployment.zip`` and ``sam.json``."""
        return Path(self._sam_package_dir)
