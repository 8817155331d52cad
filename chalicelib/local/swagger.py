"""Swagger UI for the local stack, served from a PyPI package's assets (no CDN).

The OpenAPI document needs a bearer token, so the page asks for one first
(``ampora dev-token --role Viewer``) and sends it with every request it makes,
the document included.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ASSETS_PREFIX = "/swagger/assets"

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Ampora API (local)</title>
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
  <style>
    body {{ margin: 0; font-family: sans-serif; }}
    #token-bar {{ padding: 12px 20px; background: #1b1b1b; color: #eee; }}
    #token-bar input {{ width: 60%; font-family: monospace; }}
    #token-bar code {{ color: #9fe; }}
  </style>
</head>
<body>
  <form id="token-bar">
    <label for="token">Bearer token</label>
    <input id="token" type="password" autocomplete="off"
           placeholder="paste the output of: ampora dev-token --role Admin">
    <button type="submit">Use token</button>
    <span>get one with <code>ampora dev-token --role Admin</code></span>
  </form>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script src="{assets}/swagger-ui-standalone-preset.js"></script>
  <script>
    const KEY = "ampora.localToken";
    function bearer() {{ return sessionStorage.getItem(KEY) || ""; }}
    function load() {{
      window.ui = SwaggerUIBundle({{
        url: "{spec_url}",
        dom_id: "#swagger-ui",
        deepLinking: true,
        persistAuthorization: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "StandaloneLayout",
        requestInterceptor: (req) => {{
          const token = bearer();
          if (token && !req.headers.Authorization) {{
            req.headers.Authorization = "Bearer " + token;
          }}
          return req;
        }},
      }});
    }}
    document.getElementById("token-bar").addEventListener("submit", (event) => {{
      event.preventDefault();
      const value = document.getElementById("token").value.trim().replace(/^Bearer\\s+/i, "");
      sessionStorage.setItem(KEY, value);
      load();
    }});
    if (bearer()) {{ load(); }}
  </script>
</body>
</html>
"""


def assets_dir() -> Path | None:
    """The directory of Swagger UI's static files (``swagger-ui-py``), if installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if (static / "swagger-ui-bundle.js").exists() else None


def page(spec_url: str = "/api/openapi.json") -> str:
    """The HTML page that asks for a token and then shows the API."""
    return _PAGE.format(assets=ASSETS_PREFIX, spec_url=spec_url)
