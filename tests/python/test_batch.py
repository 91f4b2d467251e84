"""BatchGetItem and BatchWriteItem: limits, duplicates, mixed requests, resource batch_writer."""

import pytest
from botocore.exceptions import ClientError

from conftest import create_table, error_of


@pytest.fixture(scope="module")
def table(ddb):
    return create_table(ddb)


def test_batch_write_put_and_delete_then_batch_get(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": {"S": "doomed"}})
    resp = ddb.batch_write_item(
        RequestItems={
            table: [{"PutRequest": {"Item": {"pk": {"S": f"bw-{i}"}, "i": {"N": str(i)}}}} for i in range(24)]
            + [{"DeleteRequest": {"Key": {"pk": {"S": "doomed"}}}}]
        }
    )
    assert resp["UnprocessedItems"] == {}
    got = ddb.batch_get_item(
        RequestItems={
            table: {
                "Keys": [{"pk": {"S": f"bw-{i}"}} for i in range(24)]
                + [{"pk": {"S": "doomed"}}, {"pk": {"S": "never"}}]
            }
        }
    )
    assert got["UnprocessedKeys"] == {}
    items = got["Responses"][table]
    assert sorted(int(it["i"]["N"]) for it in items) == list(range(24))


def test_batch_get_projection_and_consistent_read(ddb, table):
    ddb.put_item(TableName=table, Item={"pk": {"S": "bg-proj"}, "a": {"S": "1"}, "b": {"S": "2"}})
    got = ddb.batch_get_item(
        RequestItems={
            table: {
                "Keys": [{"pk": {"S": "bg-proj"}}],
                "ProjectionExpression": "#a",
                "ExpressionAttributeNames": {"#a": "a"},
                "ConsistentRead": True,
            }
        },
        ReturnConsumedCapacity="TOTAL",
    )
    assert got["Responses"][table] == [{"a": {"S": "1"}}]
    assert got["ConsumedCapacity"][0]["TableName"] == table


def test_batch_get_100_keys_ok_101_rejected(ddb, table):
    keys = [{"pk": {"S": f"k{i}"}} for i in range(101)]
    got = ddb.batch_get_item(RequestItems={table: {"Keys": keys[:100]}})
    assert got["Responses"][table] == []
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={table: {"Keys": keys}})
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "Too many items requested for the BatchGetItem call" in message or "100" in message


def test_batch_get_duplicate_keys(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": "d"}}, {"pk": {"S": "d"}}]}})
    assert error_of(e) == ("ValidationException", "Provided list of item keys contains duplicates")


def test_batch_write_over_25_rejected(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(
            RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": f"o{i}"}}}} for i in range(26)]}
        )
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "Member must have length less than or equal to 25" in message


def test_batch_write_duplicate_keys(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": "dup"}}}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "dup"}}}},
                ]
            }
        )
    assert error_of(e) == ("ValidationException", "Provided list of item keys contains duplicates")


def test_batch_write_missing_table(ddb):
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={"no-such-table-xyz": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]})
    assert error_of(e)[0] == "ResourceNotFoundException"


def test_batch_write_bad_item_rejects_whole_batch(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": "whole-1"}}}},
                    {"PutRequest": {"Item": {"pk": {"N": "1"}}}},
                ]
            }
        )
    assert error_of(e)[0] == "ValidationException"
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "whole-1"}})


def test_resource_batch_writer_and_multi_table_batch_get(ddb, resource, table):
    other = create_table(ddb, hash_key=("id", "N"))
    with resource.Table(table).batch_writer() as writer:
        for i in range(60):
            writer.put_item(Item={"pk": f"bwr-{i}", "v": i})
    with resource.Table(other).batch_writer() as writer:
        for i in range(3):
            writer.put_item(Item={"id": i})
    resp = resource.batch_get_item(
        RequestItems={
            table: {"Keys": [{"pk": f"bwr-{i}"} for i in range(0, 60, 10)]},
            other: {"Keys": [{"id": i} for i in range(3)]},
        }
    )
    assert sorted(int(it["v"]) for it in resp["Responses"][table]) == [0, 10, 20, 30, 40, 50]
    assert sorted(int(it["id"]) for it in resp["Responses"][other]) == [0, 1, 2]
