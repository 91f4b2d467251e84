"""Item limits and value validation: size, key length, empty values, nesting, numbers."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def put_error(ddb, table, item):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=table, Item=item)
    return error_of(e)


def test_item_of_400kb_fits_and_over_is_rejected(ddb, hash_table):
    # Size counts attribute names and values: "pk" + "k400" + "v" + value.
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "k400"}, "v": {"S": "x" * (400 * 1024 - 7)}})
    assert put_error(ddb, hash_table, {"pk": {"S": "k401"}, "v": {"S": "x" * (400 * 1024)}}) == (
        "ValidationException",
        "Item size has exceeded the maximum allowed size",
    )


def test_update_that_grows_item_past_400kb_is_rejected(ddb, hash_table):
    key = {"pk": {"S": "grow"}}
    ddb.put_item(TableName=hash_table, Item={**key, "a": {"S": "x" * (300 * 1024)}})
    with pytest.raises(ClientError) as e:
        ddb.update_item(
            TableName=hash_table,
            Key=key,
            UpdateExpression="SET b = :v",
            ExpressionAttributeValues={":v": {"S": "y" * (200 * 1024)}},
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "Item size" in message and "maximum allowed size" in message


def test_partition_key_over_2048_bytes(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "k" * 2048}})
    assert put_error(ddb, hash_table, {"pk": {"S": "k" * 2049}}) == (
        "ValidationException",
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
    )


def test_sort_key_over_1024_bytes(ddb, range_table):
    ddb.put_item(TableName=range_table, Item={"pk": {"S": "a"}, "sk": {"S": "s" * 1024}})
    assert put_error(ddb, range_table, {"pk": {"S": "a"}, "sk": {"S": "s" * 1025}}) == (
        "ValidationException",
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
    )


def test_empty_string_key(ddb, hash_table):
    assert put_error(ddb, hash_table, {"pk": {"S": ""}}) == (
        "ValidationException",
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot "
        "contain an empty string value. Key: pk",
    )


def test_empty_string_non_key_attribute_is_allowed(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "empty-ok"}, "s": {"S": ""}, "b": {"B": b""}})
    item = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "empty-ok"}})["Item"]
    assert item["s"] == {"S": ""}


@pytest.mark.parametrize("kind", ["SS", "NS", "BS"])
def test_empty_set(ddb, hash_table, kind):
    code, message = put_error(ddb, hash_table, {"pk": {"S": "empty-set"}, "s": {kind: []}})
    assert code == "ValidationException"
    assert "may not be empty" in message


def test_duplicate_in_set(ddb, hash_table):
    code, message = put_error(ddb, hash_table, {"pk": {"S": "dup-set"}, "s": {"SS": ["a", "a"]}})
    assert code == "ValidationException"
    # DynamoDB: "...: Input collection [a, a] contains duplicates."; ddb names the repeated
    # element instead of echoing the collection, so only the common part is checked.
    assert message.startswith("One or more parameter values were invalid: Input collection")
    assert "contains duplicates" in message


def nested(depth):
    value = {"S": "leaf"}
    for _ in range(depth):
        value = {"M": {"m": value}}
    return value


def test_nesting_32_levels_ok_33_rejected(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "deep-ok"}, "d": nested(31)})
    assert put_error(ddb, hash_table, {"pk": {"S": "deep-bad"}, "d": nested(33)}) == (
        "ValidationException",
        "Nesting Levels have exceeded supported limits",
    )


@pytest.mark.parametrize(
    "number,fragment",
    [
        ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
        ("1e126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("1e-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
        # DynamoDB's wording for an unparsable number is not documented; ddb names the value.
        ("abc", "abc"),
    ],
)
def test_bad_numbers(ddb, hash_table, number, fragment):
    code, message = put_error(ddb, hash_table, {"pk": {"S": "num"}, "n": {"N": number}})
    assert code == "ValidationException"
    assert fragment in message


@pytest.mark.parametrize("number", ["9.9999999999999999999999999999999999999e125", "1e-130", "-1e-130", "0.000", "1" * 38])
def test_numbers_at_the_edges_are_accepted(ddb, hash_table, number):
    ddb.put_item(TableName=hash_table, Item={"pk": {"S": "num-edge"}, "n": {"N": number}})
    got = ddb.get_item(TableName=hash_table, Key={"pk": {"S": "num-edge"}})["Item"]["n"]["N"]
    from decimal import Decimal

    assert Decimal(got) == Decimal(number)
