"""ConditionExpression on PutItem, DeleteItem and UpdateItem: every comparator and function."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of

ITEM = {
    "pk": {"S": "cond"},
    "n": {"N": "10"},
    "s": {"S": "hello world"},
    "b": {"B": b"\x01\x02\x03"},
    "ss": {"SS": ["red", "green"]},
    "ns": {"NS": ["1", "2", "3"]},
    "l": {"L": [{"S": "a"}, {"N": "5"}]},
    "m": {"M": {"nested": {"M": {"x": {"N": "7"}}}}},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
}

V = {
    ":n5": {"N": "5"},
    ":n10": {"N": "10"},
    ":n10dec": {"N": "10.000"},
    ":n20": {"N": "20"},
    ":hello": {"S": "hello"},
    ":hw": {"S": "hello world"},
    ":red": {"S": "red"},
    ":blue": {"S": "blue"},
    ":two": {"N": "2"},
    ":a": {"S": "a"},
    ":b12": {"B": b"\x01\x02"},
    ":S": {"S": "S"},
    ":N": {"S": "N"},
    ":SS": {"S": "SS"},
    ":M": {"S": "M"},
    ":L": {"S": "L"},
    ":BOOL": {"S": "BOOL"},
    ":NULL": {"S": "NULL"},
    ":B": {"S": "B"},
    ":NS": {"S": "NS"},
    ":true": {"BOOL": True},
    ":seven": {"N": "7"},
}


@pytest.fixture()
def item(ddb, hash_table):
    ddb.put_item(TableName=hash_table, Item=ITEM)
    return hash_table


def used_values(expr):
    return {k: v for k, v in V.items() if k in _tokens(expr)}


def _tokens(expr):
    import re

    return set(re.findall(r":[A-Za-z0-9_]+", expr))


def check(ddb, table, expr):
    """True if `expr` holds for ITEM (checked with a no-op conditional update)."""
    kwargs = {
        "TableName": table,
        "Key": {"pk": ITEM["pk"]},
        "UpdateExpression": "SET touched = :one",
        "ConditionExpression": expr,
        "ExpressionAttributeValues": {**used_values(expr), ":one": {"N": "1"}},
    }
    try:
        ddb.update_item(**kwargs)
        return True
    except ClientError as e:
        code, message = error_of_response(e)
        assert code == "ConditionalCheckFailedException", message
        assert message == "The conditional request failed"
        return False


def error_of_response(e):
    return e.response["Error"]["Code"], e.response["Error"].get("Message", "")


TRUE_CONDITIONS = [
    "n = :n10",
    "n = :n10dec",
    "n <> :n5",
    "n < :n20",
    "n <= :n10",
    "n > :n5",
    "n >= :n10",
    ":n5 < n",
    "s > :hello",
    "b > :b12",
    "n BETWEEN :n5 AND :n10",
    "n BETWEEN :n10 AND :n20",
    "s BETWEEN :hello AND :hw",
    "n IN (:n5, :n10, :n20)",
    "s IN (:hw)",
    "n = :n10 AND s = :hw",
    "n = :n5 OR s = :hw",
    "NOT n = :n5",
    "NOT (n = :n5 OR n = :n20)",
    "(n = :n5 OR n = :n10) AND NOT s = :hello",
    "attribute_exists(n)",
    "attribute_exists(m.nested.x)",
    "attribute_exists(l[1])",
    "attribute_not_exists(absent_attr)",
    "attribute_not_exists(m.nested.y)",
    "attribute_not_exists(l[2])",
    "attribute_type(s, :S)",
    "attribute_type(n, :N)",
    "attribute_type(b, :B)",
    "attribute_type(ss, :SS)",
    "attribute_type(ns, :NS)",
    "attribute_type(m, :M)",
    "attribute_type(l, :L)",
    "attribute_type(flag, :BOOL)",
    "attribute_type(nothing, :NULL)",
    "begins_with(s, :hello)",
    "begins_with(b, :b12)",
    "contains(s, :hello)",
    "contains(ss, :red)",
    "contains(ns, :two)",
    "contains(l, :a)",
    "size(s) = :n10 OR size(s) > :n10",
    "size(ss) = :two",
    "size(l) = :two",
    "size(b) > :two",
    "m.nested.x = :seven",
    "l[1] = :n5",
    "flag = :true",
    "absent_attr <> :n5",
]

FALSE_CONDITIONS = [
    "n = :n5",
    "n <> :n10",
    "n < :n10",
    "n > :n10",
    "n <= :n5",
    "n >= :n20",
    "n BETWEEN :n5 AND :n5",
    "n IN (:n5, :n20)",
    "n = :n10 AND s = :hello",
    "n = :n5 OR s = :hello",
    "NOT n = :n10",
    "attribute_exists(absent_attr)",
    "attribute_not_exists(n)",
    "attribute_type(s, :N)",
    "attribute_type(absent_attr, :S)",
    "begins_with(s, :hw) AND begins_with(s, :red)",
    "contains(s, :blue)",
    "contains(ss, :blue)",
    "contains(n, :n5)",
    "size(ss) = :n5",
    "absent_attr = :n5",
    "s < :n5",
    "m.nested.x = :n5",
]


@pytest.mark.parametrize("expr", TRUE_CONDITIONS)
def test_condition_holds(ddb, item, expr):
    assert check(ddb, item, expr) is True


@pytest.mark.parametrize("expr", FALSE_CONDITIONS)
def test_condition_fails(ddb, item, expr):
    assert check(ddb, item, expr) is False


def test_put_if_not_exists(ddb, hash_table):
    key = {"pk": {"S": "put-once"}}
    ddb.put_item(TableName=hash_table, Item={**key, "v": {"N": "1"}}, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=hash_table,
            Item={**key, "v": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert error_of(e) == ("ConditionalCheckFailedException", "The conditional request failed")
    assert ddb.get_item(TableName=hash_table, Key=key)["Item"]["v"] == {"N": "1"}


def test_condition_on_missing_item_sees_no_attributes(ddb, hash_table):
    key = {"pk": {"S": "cond-absent_attr"}}
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=hash_table, Key=key, ConditionExpression="attribute_exists(pk)")
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    ddb.delete_item(TableName=hash_table, Key=key, ConditionExpression="attribute_not_exists(pk)")


def test_conditional_delete(ddb, hash_table):
    key = {"pk": {"S": "cond-del"}}
    ddb.put_item(TableName=hash_table, Item={**key, "v": {"N": "3"}})
    with pytest.raises(ClientError):
        ddb.delete_item(
            TableName=hash_table,
            Key=key,
            ConditionExpression="v = :v",
            ExpressionAttributeValues={":v": {"N": "4"}},
        )
    ddb.delete_item(
        TableName=hash_table,
        Key=key,
        ConditionExpression="v = :v",
        ExpressionAttributeValues={":v": {"N": "3"}},
    )
    assert "Item" not in ddb.get_item(TableName=hash_table, Key=key)


@pytest.mark.parametrize("operation", ["put", "update", "delete"])
def test_return_values_on_condition_check_failure(ddb, hash_table, operation):
    key = {"pk": {"S": f"rvccf-{operation}"}}
    old = {**key, "v": {"N": "1"}}
    ddb.put_item(TableName=hash_table, Item=old)
    common = {
        "TableName": hash_table,
        "ConditionExpression": "v = :two",
        "ExpressionAttributeValues": {":two": {"N": "2"}},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with pytest.raises(ClientError) as e:
        if operation == "put":
            ddb.put_item(Item={**key, "v": {"N": "9"}}, **common)
        elif operation == "update":
            common["ExpressionAttributeValues"][":nine"] = {"N": "9"}
            ddb.update_item(Key=key, UpdateExpression="SET v = :nine", **common)
        else:
            ddb.delete_item(Key=key, **common)
    assert error_of(e)[0] == "ConditionalCheckFailedException"
    assert e.value.response["Item"] == old


def test_return_values_on_condition_check_failure_none_returns_no_item(ddb, hash_table):
    key = {"pk": {"S": "rvccf-none"}}
    ddb.put_item(TableName=hash_table, Item=key)
    with pytest.raises(ClientError) as e:
        ddb.put_item(
            TableName=hash_table,
            Item=key,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="NONE",
        )
    assert "Item" not in e.value.response


@pytest.mark.parametrize(
    "expr,values,fragment",
    [
        ("n = ", {}, "Syntax error"),
        ("n == :a", {":a": {"N": "1"}}, "Syntax error"),
        ("bogus(n)", {}, "Invalid function name; function: bogus"),
        ("name = :a", {":a": {"N": "1"}}, "reserved keyword; reserved keyword: name"),
        ("attribute_type(s, :x)", {":x": {"S": "XYZ"}}, "Invalid attribute type name found"),
        ("n BETWEEN :hi AND :lo", {":hi": {"N": "10"}, ":lo": {"N": "1"}}, "BETWEEN operator requires upper bound"),
    ],
)
def test_invalid_condition_expressions(ddb, hash_table, expr, values, fragment):
    kwargs = {"TableName": hash_table, "Item": {"pk": {"S": "bad-cond"}}, "ConditionExpression": expr}
    if values:
        kwargs["ExpressionAttributeValues"] = values
    with pytest.raises(ClientError) as e:
        ddb.put_item(**kwargs)
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("Invalid ConditionExpression: "), message
    assert fragment in message
