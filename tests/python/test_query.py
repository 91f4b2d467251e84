"""Query: every sort-key condition, key ordering for S, N and B sort keys, direction, filters."""

import pytest
from botocore.exceptions import ClientError

from conftest import create_table, error_of

NUMBERS = ["-100", "-10.5", "-2", "-0.001", "0", "0.5", "1", "2", "9", "10", "10.25", "100", "1e3"]
STRINGS = ["a", "aa", "ab", "b", "ba", "c", "x/1", "x/2", "x/10"]
BINARIES = [b"\x00", b"\x00\x01", b"\x01", b"\x7f", b"\x80", b"\xff", b"\xff\x00"]


@pytest.fixture(scope="module")
def num_table(ddb):
    name = create_table(ddb, range_key=("sk", "N"))
    for n in NUMBERS:
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": n}})
    ddb.put_item(TableName=name, Item={"pk": {"S": "other"}, "sk": {"N": "1"}})
    return name


@pytest.fixture(scope="module")
def str_table(ddb):
    name = create_table(ddb, range_key=("sk", "S"))
    for i, s in enumerate(STRINGS):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": s}, "i": {"N": str(i)}})
    return name


@pytest.fixture(scope="module")
def bin_table(ddb):
    name = create_table(ddb, hash_key=("pk", "B"), range_key=("sk", "B"))
    for b in BINARIES:
        ddb.put_item(TableName=name, Item={"pk": {"B": b"p"}, "sk": {"B": b}})
    return name


def sort_keys(ddb, table, cond, values, kind, **extra):
    resp = ddb.query(
        TableName=table,
        KeyConditionExpression=cond,
        ExpressionAttributeValues=values,
        **extra,
    )
    return [it["sk"][kind] for it in resp["Items"]]


def as_float(ns):
    return [float(n) for n in ns]


def test_numeric_sort_keys_sort_numerically(ddb, num_table):
    got = sort_keys(ddb, num_table, "pk = :p", {":p": {"S": "p"}}, "N")
    assert as_float(got) == sorted(float(n) for n in NUMBERS)
    back = sort_keys(ddb, num_table, "pk = :p", {":p": {"S": "p"}}, "N", ScanIndexForward=False)
    assert back == list(reversed(got))


@pytest.mark.parametrize(
    "cond,values,expected",
    [
        ("sk = :v", {":v": "10"}, [10]),
        ("sk = :v", {":v": "10.0"}, [10]),
        ("sk < :v", {":v": "-2"}, [-100, -10.5]),
        ("sk <= :v", {":v": "-2"}, [-100, -10.5, -2]),
        ("sk > :v", {":v": "10"}, [10.25, 100, 1000]),
        ("sk >= :v", {":v": "10"}, [10, 10.25, 100, 1000]),
        (":v < sk", {":v": "100"}, [1000]),
        ("sk BETWEEN :lo AND :hi", {":lo": "-1", ":hi": "1"}, [-0.001, 0, 0.5, 1]),
    ],
)
def test_numeric_sort_key_conditions(ddb, num_table, cond, values, expected):
    vals = {k: {"N": v} for k, v in values.items()}
    vals[":p"] = {"S": "p"}
    got = sort_keys(ddb, num_table, f"pk = :p AND {cond}", vals, "N")
    assert as_float(got) == [float(x) for x in expected]


@pytest.mark.parametrize(
    "cond,values,expected",
    [
        ("sk = :v", {":v": "ab"}, ["ab"]),
        ("sk < :v", {":v": "b"}, ["a", "aa", "ab"]),
        ("sk <= :v", {":v": "b"}, ["a", "aa", "ab", "b"]),
        ("sk > :v", {":v": "c"}, ["x/1", "x/10", "x/2"]),
        ("sk >= :v", {":v": "c"}, ["c", "x/1", "x/10", "x/2"]),
        ("sk BETWEEN :lo AND :hi", {":lo": "aa", ":hi": "ba"}, ["aa", "ab", "b", "ba"]),
        ("begins_with(sk, :v)", {":v": "a"}, ["a", "aa", "ab"]),
        ("begins_with(sk, :v)", {":v": "x/"}, ["x/1", "x/10", "x/2"]),
        ("begins_with(sk, :v)", {":v": "zzz"}, []),
        ("(sk = :v)", {":v": "c"}, ["c"]),
    ],
)
def test_string_sort_key_conditions(ddb, str_table, cond, values, expected):
    vals = {k: {"S": v} for k, v in values.items()}
    vals[":p"] = {"S": "p"}
    assert sort_keys(ddb, str_table, f"pk = :p AND {cond}", vals, "S") == expected


def test_binary_sort_keys_sort_as_unsigned_bytes(ddb, bin_table):
    got = sort_keys(ddb, bin_table, "pk = :p", {":p": {"B": b"p"}}, "B")
    assert got == sorted(BINARIES)
    got = sort_keys(
        ddb,
        bin_table,
        "pk = :p AND begins_with(sk, :pre)",
        {":p": {"B": b"p"}, ":pre": {"B": b"\xff"}},
        "B",
    )
    assert got == [b"\xff", b"\xff\x00"]
    got = sort_keys(
        ddb, bin_table, "pk = :p AND sk > :v", {":p": {"B": b"p"}, ":v": {"B": b"\x7f"}}, "B"
    )
    assert got == [b"\x80", b"\xff", b"\xff\x00"]


def test_query_other_partition_is_separate(ddb, num_table):
    got = sort_keys(ddb, num_table, "pk = :p", {":p": {"S": "other"}}, "N")
    assert got == ["1"]
    assert sort_keys(ddb, num_table, "pk = :p", {":p": {"S": "none"}}, "N") == []


def test_filter_expression_counts(ddb, str_table):
    resp = ddb.query(
        TableName=str_table,
        KeyConditionExpression="pk = :p",
        FilterExpression="i >= :three",
        ExpressionAttributeValues={":p": {"S": "p"}, ":three": {"N": "3"}},
    )
    assert resp["Count"] == len(STRINGS) - 3
    assert resp["ScannedCount"] == len(STRINGS)


def test_filter_with_limit_counts_evaluated_items(ddb, str_table):
    resp = ddb.query(
        TableName=str_table,
        KeyConditionExpression="pk = :p",
        FilterExpression="i >= :three",
        ExpressionAttributeValues={":p": {"S": "p"}, ":three": {"N": "3"}},
        Limit=4,
    )
    assert resp["ScannedCount"] == 4
    assert resp["Count"] == 1
    assert resp["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"S": STRINGS[3]}}


def test_select_count(ddb, str_table):
    resp = ddb.query(
        TableName=str_table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :a)",
        ExpressionAttributeValues={":p": {"S": "p"}, ":a": {"S": "a"}},
        Select="COUNT",
    )
    assert resp["Count"] == 3
    assert "Items" not in resp


@pytest.mark.parametrize(
    "cond,values,message",
    [
        ("sk = :v", {":v": {"S": "a"}}, "Query condition missed key schema element: pk"),
        ("pk = :p OR sk = :v", {":p": {"S": "p"}, ":v": {"S": "a"}}, "Invalid operator used in KeyConditionExpression: OR"),
        # A condition on a non-key attribute: DynamoDB's exact wording is not documented;
        # ddb reports the sort key the condition failed to name.
        ("pk = :p AND i = :v", {":p": {"S": "p"}, ":v": {"S": "a"}}, "Query condition missed key schema element: sk"),
        ("pk = :p AND sk = :v AND sk = :v", {":p": {"S": "p"}, ":v": {"S": "a"}}, "KeyConditionExpressions must only contain one condition per key"),
    ],
)
def test_invalid_key_conditions(ddb, str_table, cond, values, message):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=str_table, KeyConditionExpression=cond, ExpressionAttributeValues=values)
    code, got = error_of(e)
    assert code == "ValidationException"
    assert message in got


def test_key_condition_value_type_mismatch(ddb, num_table):
    with pytest.raises(ClientError) as e:
        ddb.query(
            TableName=num_table,
            KeyConditionExpression="pk = :p AND sk > :v",
            ExpressionAttributeValues={":p": {"S": "p"}, ":v": {"S": "a"}},
        )
    assert error_of(e)[0] == "ValidationException"


def test_resource_query_with_key_conditions(resource, str_table):
    from boto3.dynamodb.conditions import Attr, Key

    table = resource.Table(str_table)
    resp = table.query(
        KeyConditionExpression=Key("pk").eq("p") & Key("sk").begins_with("x/"),
        FilterExpression=Attr("i").gt(6),
        ScanIndexForward=False,
    )
    assert [it["sk"] for it in resp["Items"]] == ["x/2", "x/10"]
