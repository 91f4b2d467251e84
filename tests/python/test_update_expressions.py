"""UpdateItem: SET, REMOVE, ADD, DELETE and every ReturnValues option."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


def fresh(ddb, table, name, **attrs):
    key = {"pk": {"S": name}}
    ddb.put_item(TableName=table, Item={**key, **attrs})
    return key


def update(ddb, table, key, expr, values=None, names=None, **extra):
    kwargs = {"TableName": table, "Key": key, "UpdateExpression": expr, **extra}
    if values:
        kwargs["ExpressionAttributeValues"] = values
    if names:
        kwargs["ExpressionAttributeNames"] = names
    return ddb.update_item(**kwargs)


def get(ddb, table, key):
    return ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")


def test_update_creates_missing_item(ddb, hash_table):
    key = {"pk": {"S": "upsert"}}
    update(ddb, hash_table, key, "SET a = :v", {":v": {"S": "x"}})
    assert get(ddb, hash_table, key) == {**key, "a": {"S": "x"}}


def test_set_arithmetic(ddb, hash_table):
    key = fresh(ddb, hash_table, "arith", n={"N": "10"}, m={"N": "0.5"})
    update(ddb, hash_table, key, "SET n = n + :d, m = m - :d, c = n + m", {":d": {"N": "2.25"}})
    item = get(ddb, hash_table, key)
    assert item["n"] == {"N": "12.25"}
    assert item["m"] == {"N": "-1.75"}
    assert item["c"] == {"N": "10.5"}, "operands read the item as it was before the update"


def test_set_arithmetic_on_missing_attribute_fails(ddb, hash_table):
    key = fresh(ddb, hash_table, "arith-missing")
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET n = n + :d", {":d": {"N": "1"}})
    assert error_of(e) == (
        "ValidationException",
        "The provided expression refers to an attribute that does not exist in the item",
    )


def test_set_arithmetic_on_string_fails(ddb, hash_table):
    key = fresh(ddb, hash_table, "arith-string", s={"S": "x"})
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET s = s + :d", {":d": {"N": "1"}})
    assert error_of(e) == (
        "ValidationException",
        "An operand in the update expression has an incorrect data type",
    )


def test_if_not_exists(ddb, hash_table):
    key = fresh(ddb, hash_table, "ifne", a={"N": "1"})
    update(
        ddb,
        hash_table,
        key,
        "SET a = if_not_exists(a, :z), b = if_not_exists(b, :z), c = if_not_exists(c, :z) + :one",
        {":z": {"N": "0"}, ":one": {"N": "1"}},
    )
    item = get(ddb, hash_table, key)
    assert (item["a"], item["b"], item["c"]) == ({"N": "1"}, {"N": "0"}, {"N": "1"})


def test_list_append(ddb, hash_table):
    key = fresh(ddb, hash_table, "lappend", l={"L": [{"N": "1"}]})
    update(
        ddb,
        hash_table,
        key,
        "SET l = list_append(l, :tail), f = list_append(:head, l), e = list_append(if_not_exists(e, :empty), :tail)",
        {":tail": {"L": [{"N": "2"}]}, ":head": {"L": [{"N": "0"}]}, ":empty": {"L": []}},
    )
    item = get(ddb, hash_table, key)
    assert item["l"] == {"L": [{"N": "1"}, {"N": "2"}]}
    assert item["f"] == {"L": [{"N": "0"}, {"N": "1"}]}
    assert item["e"] == {"L": [{"N": "2"}]}


def test_set_nested_paths_and_list_elements(ddb, hash_table):
    key = fresh(
        ddb, hash_table, "nested", m={"M": {"a": {"N": "1"}}}, l={"L": [{"S": "x"}, {"S": "y"}]}
    )
    update(
        ddb,
        hash_table,
        key,
        "SET m.b = :v, l[0] = :z, l[5] = :end, #dot = :v",
        {":v": {"S": "new"}, ":z": {"S": "z"}, ":end": {"S": "end"}},
        {"#dot": "has.dot"},
    )
    item = get(ddb, hash_table, key)
    assert item["m"] == {"M": {"a": {"N": "1"}, "b": {"S": "new"}}}
    assert item["l"] == {"L": [{"S": "z"}, {"S": "y"}, {"S": "end"}]}
    assert item["has.dot"] == {"S": "new"}


def test_set_under_missing_map_is_invalid(ddb, hash_table):
    key = fresh(ddb, hash_table, "nested-missing")
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET nope.b = :v", {":v": {"S": "x"}})
    assert error_of(e) == (
        "ValidationException",
        "The document path provided in the update expression is invalid for update",
    )


def test_remove_attributes_and_list_indexes(ddb, hash_table):
    key = fresh(
        ddb,
        hash_table,
        "remove",
        a={"S": "1"},
        b={"S": "2"},
        l={"L": [{"N": "0"}, {"N": "1"}, {"N": "2"}, {"N": "3"}]},
        m={"M": {"x": {"N": "1"}, "y": {"N": "2"}}},
    )
    update(ddb, hash_table, key, "REMOVE a, l[1], l[3], m.x, not_there")
    item = get(ddb, hash_table, key)
    assert "a" not in item
    assert item["b"] == {"S": "2"}
    assert item["l"] == {"L": [{"N": "0"}, {"N": "2"}]}
    assert item["m"] == {"M": {"y": {"N": "2"}}}


def test_add_number_and_sets(ddb, hash_table):
    key = fresh(ddb, hash_table, "add", n={"N": "5"}, ss={"SS": ["a"]})
    update(
        ddb,
        hash_table,
        key,
        "ADD n :d, tally :d, ss :more, ns :nums",
        {":d": {"N": "-1.5"}, ":more": {"SS": ["b", "a"]}, ":nums": {"NS": ["1", "2"]}},
    )
    item = get(ddb, hash_table, key)
    assert item["n"] == {"N": "3.5"}
    assert item["tally"] == {"N": "-1.5"}
    assert sorted(item["ss"]["SS"]) == ["a", "b"]
    assert sorted(item["ns"]["NS"]) == ["1", "2"]


def test_add_wrong_type_is_rejected(ddb, hash_table):
    key = fresh(ddb, hash_table, "add-wrong", s={"S": "x"})
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "ADD s :d", {":d": {"N": "1"}})
    assert error_of(e) == (
        "ValidationException",
        "An operand in the update expression has an incorrect data type",
    )
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "ADD s :str", {":str": {"S": "y"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith(
        "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING"
    )


def test_delete_from_set(ddb, hash_table):
    key = fresh(ddb, hash_table, "del-set", ss={"SS": ["a", "b", "c"]}, one={"NS": ["1"]})
    update(
        ddb,
        hash_table,
        key,
        "DELETE ss :gone, one :one, absent_attr :gone",
        {":gone": {"SS": ["a", "zz"]}, ":one": {"NS": ["1"]}},
    )
    item = get(ddb, hash_table, key)
    assert sorted(item["ss"]["SS"]) == ["b", "c"]
    assert "one" not in item, "deleting the last element removes the attribute"


def test_all_clauses_together(ddb, hash_table):
    key = fresh(ddb, hash_table, "clauses", a={"N": "1"}, r={"S": "x"}, s={"SS": ["p", "q"]})
    update(
        ddb,
        hash_table,
        key,
        "SET a = a + :one REMOVE r ADD c :one DELETE s :p",
        {":one": {"N": "1"}, ":p": {"SS": ["p"]}},
    )
    assert get(ddb, hash_table, key) == {
        **key,
        "a": {"N": "2"},
        "c": {"N": "1"},
        "s": {"SS": ["q"]},
    }


def test_updating_key_attribute_is_rejected(ddb, hash_table):
    key = fresh(ddb, hash_table, "upd-key")
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET pk = :v", {":v": {"S": "other"}})
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key",
    )


def test_overlapping_paths_are_rejected(ddb, hash_table):
    key = fresh(ddb, hash_table, "overlap")
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET a = :v, a.b = :v", {":v": {"S": "x"}})
    assert error_of(e) == (
        "ValidationException",
        "Invalid UpdateExpression: Two document paths overlap with each other; must remove or "
        "rewrite one of these paths; path one: [a], path two: [a, b]",
    )


def test_clause_used_twice(ddb, hash_table):
    key = fresh(ddb, hash_table, "twice")
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET a = :v SET b = :v", {":v": {"S": "x"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert 'The "SET" section can only be used once in an update expression' in message


def test_update_number_overflow(ddb, hash_table):
    # 1E38 + 1 needs 39 significant digits; DynamoDB refuses rather than rounding.
    key = fresh(ddb, hash_table, "overflow", n={"N": "1" + "0" * 38})
    with pytest.raises(ClientError) as e:
        update(ddb, hash_table, key, "SET n = n + :one", {":one": {"N": "1"}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "38 significant digits" in message


RV_OLD = {"a": {"N": "1"}, "b": {"S": "keep"}}


@pytest.mark.parametrize(
    "return_values,expected",
    [
        ("NONE", None),
        ("ALL_OLD", {"pk": {"S": "rv-ALL_OLD"}, **RV_OLD}),
        ("UPDATED_OLD", {"a": {"N": "1"}}),
        ("ALL_NEW", {"pk": {"S": "rv-ALL_NEW"}, "a": {"N": "2"}, "b": {"S": "keep"}, "c": {"S": "new"}}),
        ("UPDATED_NEW", {"a": {"N": "2"}, "c": {"S": "new"}}),
    ],
)
def test_update_return_values(ddb, hash_table, return_values, expected):
    key = fresh(ddb, hash_table, f"rv-{return_values}", **RV_OLD)
    resp = update(
        ddb,
        hash_table,
        key,
        "SET a = a + :one, c = :c",
        {":one": {"N": "1"}, ":c": {"S": "new"}},
        ReturnValues=return_values,
    )
    assert resp.get("Attributes") == expected


def test_updated_new_returns_only_the_updated_nested_part(ddb, hash_table):
    key = fresh(ddb, hash_table, "rv-nested", m={"M": {"x": {"N": "1"}, "y": {"N": "2"}}})
    resp = update(
        ddb, hash_table, key, "SET m.x = :v", {":v": {"N": "9"}}, ReturnValues="UPDATED_NEW"
    )
    assert resp["Attributes"] == {"m": {"M": {"x": {"N": "9"}}}}


def test_resource_update_with_return_values(resource, hash_table):
    table = resource.Table(hash_table)
    table.put_item(Item={"pk": "res-upd", "count": 1})
    resp = table.update_item(
        Key={"pk": "res-upd"},
        UpdateExpression="ADD #c :inc",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":inc": 4},
        ReturnValues="UPDATED_NEW",
    )
    assert resp["Attributes"] == {"count": 5}
