"""PutItem, GetItem, DeleteItem: round trips, key validation, ReturnValues and capacity."""

from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from conftest import create_table, error_of, unique_name

EVERY_TYPE = {
    "pk": {"S": "every-type"},
    "s": {"S": "héllo"},
    "n": {"N": "-12.5"},
    "b": {"B": b"\x00\x01\xff"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"x", b"y"]},
    "bool": {"BOOL": False},
    "null": {"NULL": True},
    "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": []}]},
    "m": {"M": {"inner": {"M": {"deep": {"S": "v"}}}, "empty": {"M": {}}}},
}


def test_every_attribute_type_round_trips(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item=EVERY_TYPE)
    got = ddb.get_item(TableName=hash_table, Key={"pk": EVERY_TYPE["pk"]})["Item"]
    assert got["ss"]["SS"] == ["a", "b"] or sorted(got["ss"]["SS"]) == ["a", "b"]
    got["ss"]["SS"] = sorted(got["ss"]["SS"])
    got["ns"]["NS"] = sorted(got["ns"]["NS"])
    got["bs"]["BS"] = sorted(got["bs"]["BS"])
    assert got == EVERY_TYPE


def test_missing_item_has_no_item_field(ddb, hash_table):
    resp = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "never-written"}})
    assert "Item" not in resp


def test_put_replaces_whole_item_and_returns_all_old(ddb, hash_table):
    key = {"pk": {"S": "replace"}}
    first = ddb.put_item(TableName=hash_table, Item={**key, "a": {"S": "1"}}, ReturnValues="ALL_OLD")
    assert "Attributes" not in first
    second = ddb.put_item(TableName=hash_table, Item={**key, "b": {"S": "2"}}, ReturnValues="ALL_OLD")
    assert second["Attributes"] == {**key, "a": {"S": "1"}}
    assert ddb.get_item(TableName=hash_table, Key=key)["Item"] == {**key, "b": {"S": "2"}}


def test_put_rejects_update_return_values(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": {"S": "rv"}}, ReturnValues="UPDATED_NEW")
    assert error_of(e) == ("ValidationException", "Return values set to invalid value")


def test_delete_returns_all_old_and_removes(ddb, hash_table):
    key = {"pk": {"S": "to-delete"}}
    ddb.put_item(TableName=hash_table, Item={**key, "x": {"N": "1"}})
    resp = ddb.delete_item(TableName=hash_table, Key=key, ReturnValues="ALL_OLD")
    assert resp["Attributes"] == {**key, "x": {"N": "1"}}
    assert "Item" not in ddb.get_item(TableName=hash_table, Key=key)
    # Deleting a missing item succeeds and returns nothing.
    assert "Attributes" not in ddb.delete_item(TableName=hash_table, Key=key, ReturnValues="ALL_OLD")


def test_consistent_read_get(ddb, hash_table):
    key = {"pk": {"S": "consistent"}}
    ddb.put_item(TableName=hash_table, Item=key)
    assert ddb.get_item(TableName=hash_table, Key=key, ConsistentRead=True)["Item"] == key


def test_missing_key_attribute_in_item(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"other": {"S": "x"}})
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Missing the key pk in the item",
    )


def test_key_type_mismatch(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=hash_table, Item={"pk": {"N": "1"}})
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
    )


def test_get_with_extra_key_attribute(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=hash_table, Key={"pk": {"S": "a"}, "extra": {"S": "b"}})
    assert error_of(e) == ("ValidationException", "The provided key element does not match the schema")


def test_get_with_missing_range_key(ddb, range_table):
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=range_table, Key={"pk": {"S": "a"}})
    assert error_of(e) == ("ValidationException", "The provided key element does not match the schema")


def test_operations_on_missing_table(ddb):
    name = unique_name("missing")
    for call in (
        lambda: ddb.put_item(TableName=name, Item={"pk": {"S": "a"}}),
        lambda: ddb.get_item(TableName=name, Key={"pk": {"S": "a"}}),
        lambda: ddb.delete_item(TableName=name, Key={"pk": {"S": "a"}}),
        lambda: ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :v",
            ExpressionAttributeValues={":v": {"S": "a"}},
        ),
        lambda: ddb.scan(TableName=name),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("ResourceNotFoundException", "Requested resource not found")


def test_return_consumed_capacity(ddb):
    name = create_table(ddb)
    resp = ddb.put_item(TableName=name, Item={"pk": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["TableName"] == name
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    resp = ddb.get_item(TableName=name, Key={"pk": {"S": "cap"}}, ReturnConsumedCapacity="TOTAL")
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 0.5  # eventually consistent read
    resp = ddb.get_item(
        TableName=name, Key={"pk": {"S": "cap"}}, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
    )
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 1.0
    resp = ddb.get_item(
        TableName=name, Key={"pk": {"S": "cap"}}, ReturnConsumedCapacity="INDEXES"
    )
    assert resp["ConsumedCapacity"]["Table"]["CapacityUnits"] == 0.5
    resp = ddb.get_item(TableName=name, Key={"pk": {"S": "cap"}})
    assert "ConsumedCapacity" not in resp
    # A 3.5 KB item costs 4 write units.
    resp = ddb.put_item(
        TableName=name,
        Item={"pk": {"S": "big"}, "v": {"S": "x" * 3500}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert resp["ConsumedCapacity"]["CapacityUnits"] == 4.0


def test_resource_api_round_trip(resource, hash_table):
    table = resource.Table(hash_table)
    table.put_item(Item={"pk": "res", "n": Decimal("3.14"), "l": [1, "two"], "m": {"k": {"a"}}})
    item = table.get_item(Key={"pk": "res"})["Item"]
    assert item == {"pk": "res", "n": Decimal("3.14"), "l": [Decimal(1), "two"], "m": {"k": {"a"}}}
    table.delete_item(Key={"pk": "res"})
    assert "Item" not in table.get_item(Key={"pk": "res"})
