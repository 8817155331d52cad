"""DynamoDB tables derived from the pynamodb models: same names, keys, indexes, TTL and streams.

Nothing here lists a table by hand: every model registered in ``chalicelib.core.db.MODELS``
becomes one table, so a new model is deployed without anyone editing infra.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from pynamodb.models import Model

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER,
          "B": dynamodb.AttributeType.BINARY}


def short_name(model: type[Model]) -> str:
    """The model's table name without the prefix of the process that imported it."""
    from chalicelib.core.db import table_name

    return str(model.Meta.table_name).removeprefix(table_name(""))


def _attribute_types(schema: dict[str, Any]) -> dict[str, str]:
    definitions = list(schema["attribute_definitions"])
    for index in [*schema["global_secondary_indexes"], *schema["local_secondary_indexes"]]:
        definitions += index.get("attribute_definitions", [])
    return {d["AttributeName"]: d["AttributeType"] for d in definitions}


def _keys(key_schema: list[dict[str, str]], types: dict[str, str]
          ) -> tuple[dynamodb.Attribute, dynamodb.Attribute | None]:
    """The (partition, sort) key attributes of a table or index key schema."""
    by_role = {k["KeyType"]: k["AttributeName"] for k in key_schema}

    def attribute(role: str) -> dynamodb.Attribute | None:
        name = by_role.get(role)
        return None if name is None else dynamodb.Attribute(name=name, type=_TYPES[types[name]])

    partition = attribute("HASH")
    assert partition is not None, "every table and index has a partition key"
    return partition, attribute("RANGE")


def _projection(index: dict[str, Any]) -> dict[str, Any]:
    projection = index.get("projection", {})
    return {"projection_type": dynamodb.ProjectionType(projection.get("ProjectionType", "ALL")),
            "non_key_attributes": projection.get("NonKeyAttributes")}


def _stream(model: type[Model]) -> dynamodb.StreamViewType | None:
    view = getattr(model.Meta, "stream_view_type", None)
    return None if view is None else dynamodb.StreamViewType(str(view))


def _schema(model: type[Model]) -> dict[str, Any]:
    """The table's CreateTable schema, exactly as pynamodb (and the local stack) create it."""
    return dict(model._get_schema())


def _add_indexes(table: dynamodb.Table, schema: dict[str, Any], types: dict[str, str]) -> None:
    for index in schema["global_secondary_indexes"]:
        key, sort_key = _keys(index["key_schema"], types)
        table.add_global_secondary_index(index_name=index["index_name"], partition_key=key,
                                         sort_key=sort_key, **_projection(index))
    for index in schema["local_secondary_indexes"]:
        _, sort_key = _keys(index["key_schema"], types)
        assert sort_key is not None, "a local secondary index has a sort key"
        table.add_local_secondary_index(index_name=index["index_name"], sort_key=sort_key,
                                        **_projection(index))


def model_table(scope: Construct, model: type[Model], prefix: str) -> dynamodb.Table:
    """The table of ``model``: on-demand, PITR, deletion-protected, retained on stack delete."""
    from chalicelib.core.db import ttl_attribute

    schema = _schema(model)
    types = _attribute_types(schema)
    partition, sort = _keys(schema["key_schema"], types)
    table = dynamodb.Table(
        scope, f"{model.__name__}Table", table_name=f"{prefix}{short_name(model)}",
        partition_key=partition, sort_key=sort, billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True),
        deletion_protection=True, removal_policy=RemovalPolicy.RETAIN,
        time_to_live_attribute=ttl_attribute(model), stream=_stream(model),
    )
    _add_indexes(table, schema, types)
    return table


def model_tables(scope: Construct, models: list[type[Model]], prefix: str
                 ) -> dict[type[Model], dynamodb.Table]:
    """One table per model, by model, in registration order."""
    return {model: model_table(scope, model, prefix) for model in models}
