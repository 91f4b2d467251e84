"""Query and Scan paging: Limit, LastEvaluatedKey/ExclusiveStartKey, and the 1 MB page limit."""

import pytest

from conftest import create_table

ITEMS_PER_PARTITION = 23


@pytest.fixture(scope="module")
def table(ddb):
    name = create_table(ddb, range_key=("sk", "N"))
    for i in range(ITEMS_PER_PARTITION):
        ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "odd": {"BOOL": i % 2 == 1}})
    return name


def query_all(ddb, table, **kwargs):
    pages, items = [], []
    start = None
    values = {":p": {"S": "p"}, **kwargs.pop("values", {})}
    for _ in range(1000):
        if start:
            kwargs["ExclusiveStartKey"] = start
        resp = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=values,
            **kwargs,
        )
        pages.append(resp)
        items.extend(resp.get("Items", []))
        start = resp.get("LastEvaluatedKey")
        if not start:
            return pages, items
    raise AssertionError("paging did not terminate")


@pytest.mark.parametrize("forward", [True, False])
def test_query_pages_with_limit_until_exhausted(ddb, table, forward):
    pages, items = query_all(ddb, table, Limit=5, ScanIndexForward=forward)
    expected = list(range(ITEMS_PER_PARTITION))
    if not forward:
        expected.reverse()
    assert [int(it["sk"]["N"]) for it in items] == expected
    assert [p["Count"] for p in pages[:-1]] == [5] * (len(pages) - 1)
    for page in pages[:-1]:
        assert page["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": page["Items"][-1]["sk"]}


def test_limit_equal_to_remaining_items_may_return_empty_last_page(ddb, table):
    pages, items = query_all(ddb, table, Limit=ITEMS_PER_PARTITION)
    assert len(items) == ITEMS_PER_PARTITION
    # DynamoDB returns a LastEvaluatedKey when the limit is reached exactly; the next page is
    # empty and has none.
    assert len(pages) in (1, 2)
    assert pages[-1].get("LastEvaluatedKey") is None


def test_filtered_paging_counts(ddb, table):
    pages, items = query_all(
        ddb, table, Limit=4, FilterExpression="odd = :t", values={":t": {"BOOL": True}}
    )
    assert [int(it["sk"]["N"]) for it in items] == list(range(1, ITEMS_PER_PARTITION, 2))
    assert sum(p["ScannedCount"] for p in pages) == ITEMS_PER_PARTITION
    assert all(p["ScannedCount"] <= 4 for p in pages)
    assert sum(p["Count"] for p in pages) == len(items)


def test_select_count_paging(ddb, table):
    pages, _ = query_all(ddb, table, Limit=10, Select="COUNT")
    assert sum(p["Count"] for p in pages) == ITEMS_PER_PARTITION
    assert all("Items" not in p for p in pages)


def test_boto3_query_paginator(ddb, table):
    paginator = ddb.get_paginator("query")
    seen = []
    for page in paginator.paginate(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        PaginationConfig={"PageSize": 7},
    ):
        seen.extend(int(it["sk"]["N"]) for it in page["Items"])
    assert seen == list(range(ITEMS_PER_PARTITION))


def test_one_megabyte_pages(ddb):
    """Items of ~400 KB: a page stops once it has read 1 MB, so at most 3 fit a page."""
    name = create_table(ddb, range_key=("sk", "N"))
    big = "x" * (399 * 1024)
    count = 7
    for i in range(count):
        ddb.put_item(TableName=name, Item={"pk": {"S": "big"}, "sk": {"N": str(i)}, "v": {"S": big}})
    start = None
    sizes, seen = [], []
    for _ in range(20):
        kwargs = {"ExclusiveStartKey": start} if start else {}
        resp = ddb.query(
            TableName=name,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "big"}},
            **kwargs,
        )
        sizes.append(resp["Count"])
        seen.extend(int(it["sk"]["N"]) for it in resp["Items"])
        start = resp.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == list(range(count))
    assert len(sizes) >= 3, sizes
    assert max(sizes) <= 3, sizes
    # Scan follows the same limit.
    scan = ddb.scan(TableName=name)
    assert 1 <= scan["Count"] <= 3
    assert "LastEvaluatedKey" in scan
