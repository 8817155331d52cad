"""The one Logger, Metrics and (optional) Tracer of the process.

Logs are JSON with the request id, tenant and actor appended per request;
metrics are CloudWatch EMF lines, one per counted occurrence. The X-Ray
SDK is imported only when tracing is switched on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chalicelib.core.settings import settings

logger = Logger(service="ampora", level=settings().log_level)
NAMESPACE = "Ampora"
_tracer: Any = None


def tracer() -> Any:
    """The Powertools Tracer, built on first use, only when tracing is enabled."""
    global _tracer
    if _tracer is None and settings().tracing:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service="ampora")
    return _tracer


@contextmanager
def traced(name: str, **annotations: str) -> Iterator[None]:
    """An X-Ray subsegment around the block when tracing is on; nothing otherwise."""
    active = tracer()
    if active is None:
        yield
        return
    with active.provider.in_subsegment(name) as subsegment:
        for key, value in annotations.items():
            subsegment.put_annotation(key=key, value=value)
        yield


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Emit the counter metric ``name`` (an EMF line on stdout) with its dimensions."""
    with single_metric(
        name=name, unit=MetricUnit.Count, value=value, namespace=NAMESPACE
    ) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)
