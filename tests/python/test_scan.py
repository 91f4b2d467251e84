"""Scan: paging, FilterExpression, parallel segments, Select COUNT."""

import pytest
from botocore.exceptions import ClientError

from conftest import create_table, error_of

ITEM_COUNT = 120


@pytest.fixture(scope="module")
def table(ddb):
    name = create_table(ddb, hash_key=("id", "N"))
    requests = [
        {"PutRequest": {"Item": {"id": {"N": str(i)}, "even": {"BOOL": i % 2 == 0}}}} for i in range(ITEM_COUNT)
    ]
    for chunk in range(0, ITEM_COUNT, 25):
        resp = ddb.batch_write_item(RequestItems={name: requests[chunk : chunk + 25]})
        assert resp["UnprocessedItems"] == {}
    return name


def scan_all(ddb, table, **kwargs):
    items, pages = [], []
    start = None
    for _ in range(1000):
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = ddb.scan(TableName=table, **kwargs)
        pages.append(resp)
        items.extend(resp.get("Items", []))
        start = resp.get("LastEvaluatedKey")
        if not start:
            return pages, items
    raise AssertionError("scan paging did not terminate")


def ids(items):
    return sorted(int(it["id"]["N"]) for it in items)


def test_scan_whole_table(ddb, table):
    pages, items = scan_all(ddb, table)
    assert ids(items) == list(range(ITEM_COUNT))


def test_scan_paging_with_limit(ddb, table):
    pages, items = scan_all(ddb, table, Limit=17)
    assert ids(items) == list(range(ITEM_COUNT)), "every item exactly once"
    assert all(p["ScannedCount"] <= 17 for p in pages)


def test_scan_filter(ddb, table):
    pages, items = scan_all(
        ddb, table, FilterExpression="even = :t AND id < :n", ExpressionAttributeValues={":t": {"BOOL": True}, ":n": {"N": "20"}}
    )
    assert ids(items) == list(range(0, 20, 2))
    assert sum(p["ScannedCount"] for p in pages) == ITEM_COUNT


@pytest.mark.parametrize("total", [1, 2, 3, 7])
def test_parallel_segments_cover_every_item_once(ddb, table, total):
    seen = []
    for segment in range(total):
        _, items = scan_all(ddb, table, Segment=segment, TotalSegments=total, Limit=13)
        seen.extend(items)
    assert ids(seen) == list(range(ITEM_COUNT))


def test_segment_must_be_less_than_total(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=table, Segment=2, TotalSegments=2)
    assert error_of(e) == (
        "ValidationException",
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        "Segment: 2 is not less than TotalSegments: 2",
    )


def test_segment_without_total(ddb, table):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=table, Segment=0)
    code, message = error_of(e)
    assert code == "ValidationException"
    assert "TotalSegments" in message


def test_scan_select_count(ddb, table):
    pages, _ = scan_all(ddb, table, Select="COUNT")
    assert sum(p["Count"] for p in pages) == ITEM_COUNT
    assert all("Items" not in p for p in pages)


def test_scan_projection(ddb, table):
    resp = ddb.scan(TableName=table, ProjectionExpression="id", Limit=5)
    assert all(set(it) == {"id"} for it in resp["Items"])


def test_resource_scan_paginates(resource, table):
    from boto3.dynamodb.conditions import Attr

    t = resource.Table(table)
    seen = []
    kwargs = {"FilterExpression": Attr("even").eq(False), "Limit": 50}
    while True:
        resp = t.scan(**kwargs)
        seen.extend(int(it["id"]) for it in resp["Items"])
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    assert sorted(seen) == list(range(1, ITEM_COUNT, 2))
