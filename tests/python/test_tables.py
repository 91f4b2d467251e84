"""Control plane: CreateTable, DescribeTable, ListTables, UpdateTable, DeleteTable."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY, create_table, error_of, unique_name


@pytest.fixture(scope="module")
def raw_ddb(endpoint):
    """A client that skips boto3's own parameter validation, to reach the server's."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


@pytest.mark.parametrize(
    "hash_type,range_type",
    [("S", None), ("N", None), ("B", None), ("S", "S"), ("S", "N"), ("N", "B")],
)
def test_create_table_with_every_key_type(ddb, hash_type, range_type):
    name = unique_name()
    schema = [{"AttributeName": "h", "KeyType": "HASH"}]
    defs = [{"AttributeName": "h", "AttributeType": hash_type}]
    if range_type:
        schema.append({"AttributeName": "r", "KeyType": "RANGE"})
        defs.append({"AttributeName": "r", "AttributeType": range_type})
    resp = ddb.create_table(
        TableName=name, KeySchema=schema, AttributeDefinitions=defs, BillingMode="PAY_PER_REQUEST"
    )
    desc = resp["TableDescription"]
    assert desc["TableName"] == name
    assert desc["KeySchema"] == schema
    assert sorted(desc["AttributeDefinitions"], key=lambda d: d["AttributeName"]) == defs
    assert desc["TableStatus"] in ("CREATING", "ACTIVE")
    assert desc["TableArn"] == f"arn:aws:dynamodb:us-east-1:{desc['TableArn'].split(':')[4]}:table/{name}"
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    described = ddb.describe_table(TableName=name)["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert described["ItemCount"] == 0
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_create_provisioned_table_reports_throughput(ddb):
    name = unique_name()
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 7, "WriteCapacityUnits": 3},
    )
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 3


def test_provisioned_table_without_throughput_is_rejected(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PROVISIONED",
        )
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must "
        "both be specified when BillingMode is PROVISIONED",
    )


def test_duplicate_table_is_resource_in_use(ddb):
    name = create_table(ddb)
    with pytest.raises(ClientError) as e:
        create_table(ddb, name=name)
    assert error_of(e) == ("ResourceInUseException", f"Table already exists: {name}")


@pytest.mark.parametrize("bad", ["ab", "has space", "sl/ash", "x" * 256])
def test_bad_table_names_are_rejected(raw_ddb, bad):
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(
            TableName=bad,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "tableName" in message or "TableName" in message


def test_missing_key_schema_is_rejected(raw_ddb):
    with pytest.raises(ClientError) as e:
        raw_ddb.create_table(
            TableName=unique_name(),
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "keySchema" in message or "KeySchema" in message


def test_unused_attribute_definition_is_rejected(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "extra", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    assert error_of(e) == (
        "ValidationException",
        "One or more parameter values were invalid: Number of attributes in KeySchema does not "
        "exactly match number of attributes defined in AttributeDefinitions",
    )


def test_key_without_attribute_definition_is_rejected(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique_name(),
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert message.startswith("One or more parameter values were invalid")


def test_two_hash_keys_are_rejected(ddb):
    with pytest.raises(ClientError) as e:
        ddb.create_table(
            TableName=unique_name(),
            KeySchema=[
                {"AttributeName": "a", "KeyType": "HASH"},
                {"AttributeName": "b", "KeyType": "HASH"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "a", "AttributeType": "S"},
                {"AttributeName": "b", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    assert error_of(e)[0] == "ValidationException"


def test_describe_missing_table(ddb):
    name = unique_name()
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert error_of(e) == (
        "ResourceNotFoundException",
        f"Requested resource not found: Table: {name} not found",
    )


def test_list_tables_pages_with_limit_and_exclusive_start(ddb):
    prefix = unique_name("list")
    names = sorted(create_table(ddb, name=f"{prefix}-{i}") for i in range(5))
    seen = []
    start = None
    pages = 0
    while True:
        kwargs = {"Limit": 2}
        if start:
            kwargs["ExclusiveStartTableName"] = start
        resp = ddb.list_tables(**kwargs)
        assert len(resp["TableNames"]) <= 2
        seen.extend(resp["TableNames"])
        pages += 1
        assert pages < 1000
        start = resp.get("LastEvaluatedTableName")
        if not start:
            break
        assert start == resp["TableNames"][-1]
    assert seen == sorted(seen), "ListTables returns names in order"
    assert len(seen) == len(set(seen))
    for n in names:
        assert n in seen
    # Starting after a name skips it and everything before it.
    after = ddb.list_tables(ExclusiveStartTableName=names[1], Limit=3)["TableNames"]
    assert after[:3] == names[2:5]


def test_list_tables_paginator(ddb):
    name = create_table(ddb)
    all_names = []
    for page in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 3}):
        all_names.extend(page["TableNames"])
    assert name in all_names


def test_list_tables_limit_out_of_range(ddb):
    with pytest.raises(ClientError) as e:
        ddb.list_tables(Limit=101)
    assert error_of(e)[0] == "ValidationException"


def test_update_table_throughput_and_billing_mode(ddb):
    name = unique_name()
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    resp = ddb.update_table(
        TableName=name, ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 6}
    )
    assert resp["TableDescription"]["TableName"] == name
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert desc["ProvisionedThroughput"]["WriteCapacityUnits"] == 6
    ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
    desc = ddb.describe_table(TableName=name)["Table"]
    assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_update_missing_table(ddb):
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=unique_name(), BillingMode="PAY_PER_REQUEST")
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_delete_table_then_it_is_gone(ddb):
    name = create_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "a"}})
    resp = ddb.delete_table(TableName=name)
    assert resp["TableDescription"]["TableName"] == name
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=name)
    assert error_of(e)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=name, Key={"pk": {"S": "a"}})
    assert error_of(e) == ("ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(ClientError) as e:
        ddb.delete_table(TableName=name)
    assert error_of(e)[0] == "ResourceNotFoundException"
    assert name not in ddb.list_tables()["TableNames"]


def test_recreated_table_starts_empty(ddb):
    name = create_table(ddb)
    ddb.put_item(TableName=name, Item={"pk": {"S": "old"}})
    ddb.delete_table(TableName=name)
    ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    create_table(ddb, name=name)
    assert ddb.scan(TableName=name)["Count"] == 0
