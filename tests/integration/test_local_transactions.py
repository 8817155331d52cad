"""The local stack's DynamoDB transactions stay all-or-nothing without copying whole tables."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

TABLE = "local-transactions"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    from chalicelib.local import transactions

    uninstall = transactions.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
        client.put_item(TableName=TABLE, Item={"k": {"S": "kept"}, "n": {"N": "1"}})
        yield client
    uninstall()


def _items(client: Any) -> dict[str, dict[str, Any]]:
    return {item["k"]["S"]: item for item in client.scan(TableName=TABLE)["Items"]}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    before = _items(dynamodb)
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"k": {"S": "new"}}}},
            {"Update": {"TableName": TABLE, "Key": {"k": {"S": "kept"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": {"k": {"S": "absent"}},
                                "ConditionExpression": "attribute_exists(k)"}},
        ])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in caught.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert _items(dynamodb) == before


def test_a_committed_transaction_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"k": {"S": "new"}},
                 "ConditionExpression": "attribute_not_exists(k)"}},
        {"Delete": {"TableName": TABLE, "Key": {"k": {"S": "kept"}}}},
    ])
    assert set(_items(dynamodb)) == {"new"}


def test_a_table_deep_copied_outside_a_transaction_is_a_true_copy(dynamodb: Any) -> None:
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends["123456789012"]["us-east-1"].get_table(TABLE)
    clone = copy.deepcopy(table)
    assert clone is not table
    dynamodb.put_item(TableName=TABLE, Item={"k": {"S": "later"}})
    assert (len(clone.items), len(table.items)) == (1, 2)
