"""ProjectionExpression and ExpressionAttributeNames/Values: resolution, unused and undefined."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of

ITEM = {
    "pk": {"S": "proj"},
    "a": {"S": "A"},
    "b": {"N": "2"},
    "m": {"M": {"x": {"N": "1"}, "y": {"M": {"z": {"S": "deep"}}}}},
    "l": {"L": [{"S": "l0"}, {"M": {"k": {"S": "v"}}}, {"S": "l2"}, {"S": "l3"}]},
    "name": {"S": "reserved word attribute"},
}


@pytest.fixture(scope="module")
def table(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item=ITEM)
    return hash_table


def project(ddb, table, expr, names=None):
    kwargs = {"TableName": table, "Key": {"pk": ITEM["pk"]}, "ProjectionExpression": expr}
    if names:
        kwargs["ExpressionAttributeNames"] = names
    return ddb.get_item(**kwargs).get("Item")


@pytest.mark.parametrize(
    "expr,names,expected",
    [
        ("a", None, {"a": {"S": "A"}}),
        ("a, b", None, {"a": {"S": "A"}, "b": {"N": "2"}}),
        ("m.x", None, {"m": {"M": {"x": {"N": "1"}}}}),
        ("m.y.z", None, {"m": {"M": {"y": {"M": {"z": {"S": "deep"}}}}}}),
        ("l[0]", None, {"l": {"L": [{"S": "l0"}]}}),
        ("l[3], l[1]", None, {"l": {"L": [{"M": {"k": {"S": "v"}}}, {"S": "l3"}]}}),
        ("l[1].k", None, {"l": {"L": [{"M": {"k": {"S": "v"}}}]}}),
        ("#n", {"#n": "name"}, {"name": {"S": "reserved word attribute"}}),
        ("#m.#x", {"#m": "m", "#x": "x"}, {"m": {"M": {"x": {"N": "1"}}}}),
        ("absent_attr", None, {}),
        ("l[9]", None, {}),
        ("m.nope", None, {}),
    ],
)
def test_projection(ddb, table, expr, names, expected):
    assert (project(ddb, table, expr, names) or {}) == expected


def test_projection_with_reserved_word_is_rejected(ddb, table):
    with pytest.raises(ClientError) as e:
        project(ddb, table, "name")
    assert error_of(e) == (
        "ValidationException",
        "Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name",
    )


def test_overlapping_projection_is_rejected(ddb, table):
    with pytest.raises(ClientError) as e:
        project(ddb, table, "m, m.x")
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("Invalid ProjectionExpression: Two document paths overlap")


def test_projection_on_query_and_scan(ddb, table):
    resp = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": ITEM["pk"]},
        ProjectionExpression="a, m.y",
    )
    assert resp["Items"] == [{"a": {"S": "A"}, "m": {"M": {"y": {"M": {"z": {"S": "deep"}}}}}}]


def test_unused_attribute_value(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=hash_table,
            Item={"pk": {"S": "unused"}},
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":x": {"S": "x"}},
        )
    assert error_of(e) == (
        "ValidationException",
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}",
    )


def test_unused_attribute_name(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.get_item(
            TableName=hash_table,
            Key={"pk": {"S": "unused"}},
            ProjectionExpression="a",
            ExpressionAttributeNames={"#x": "x"},
        )
    assert error_of(e) == (
        "ValidationException",
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}",
    )


def test_undefined_attribute_value(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.update_item(
            TableName=hash_table, Key={"pk": {"S": "undef"}}, UpdateExpression="SET a = :nope"
        )
    assert error_of(e) == (
        "ValidationException",
        "Invalid UpdateExpression: An expression attribute value used in expression is not defined; "
        "attribute value: :nope",
    )


def test_undefined_attribute_name(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.delete_item(
            TableName=hash_table,
            Key={"pk": {"S": "undef"}},
            ConditionExpression="attribute_exists(#nope)",
        )
    assert error_of(e) == (
        "ValidationException",
        "Invalid ConditionExpression: An expression attribute name used in the document path is not "
        "defined; attribute name: #nope",
    )


def test_placeholders_shared_across_expressions(ddb, hash_table):
    """A name or value used by any expression of the request counts as used."""
    key = {"pk": {"S": "shared-ph"}}
    ddb.put_item(TableName=hash_table, Item={**key, "v": {"N": "1"}})
    resp = ddb.update_item(
        TableName=hash_table,
        Key=key,
        UpdateExpression="SET #v = :new",
        ConditionExpression="#v = :old",
        ExpressionAttributeNames={"#v": "v"},
        ExpressionAttributeValues={":new": {"N": "2"}, ":old": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    assert resp["Attributes"]["v"] == {"N": "2"}


def test_attribute_values_without_expression(ddb, hash_table):
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=hash_table,
            Item={"pk": {"S": "x"}},
            ExpressionAttributeValues={":x": {"S": "x"}},
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "ExpressionAttributeValues can only be specified when using expressions" in message
