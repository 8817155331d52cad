"""Route of the OpenAPI document, generated from the operation table."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.core.http import Call, Reply, operation
from chalicelib.core.lazy import LazyModule

bp = Blueprint(__name__)
service = LazyModule("chalicelib.meta.service")


@operation(bp, "GET", "/api/openapi.json", name="meta.openapi",
           summary="The OpenAPI 3.1 document of this API", resource="openapi", tag="Meta")
def openapi_document(call: Call) -> Reply:
    """Every route, its parameters, bodies, responses and problems."""
    return Reply(service.document())
