"""Capacity admission as boto3 sees it: past a provisioned table's rate, DynamoDB's throttling
error (code, message, HTTP 400, boto3's modeled exception), ConsumedCapacity on what got through,
and an SDK that retries gets everything written at the table's rate."""

import time

from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import make_session, unique_name

THROTTLED = (
    "ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
)


def code_and_message(error):
    return error.response["Error"]["Code"], error.response["Error"].get("Message", "")


def provisioned_table(ddb, wcu, rcu=5):
    name = unique_name()
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def test_writes_past_the_provisioned_rate_get_dynamodbs_throttling_error(ddb):
    # The suite's client retries a throttled request once, after a short backoff; at 1 WCU/s
    # that is not enough for a run of writes.
    name = provisioned_table(ddb, 1)
    outcomes = []
    for i in range(10):
        try:
            answer = ddb.put_item(
                TableName=name, Item={"pk": {"S": f"k{i}"}}, ReturnConsumedCapacity="TOTAL"
            )
            assert answer["ConsumedCapacity"] == {"TableName": name, "CapacityUnits": 1.0}
            outcomes.append("ok")
        except ddb.exceptions.ProvisionedThroughputExceededException as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            outcomes.append(code_and_message(e))
    throttled = [o for o in outcomes if o != "ok"]
    assert "ok" in outcomes, outcomes
    assert throttled, f"10 writes at once into 1 WCU/s were all admitted: {outcomes}"
    assert set(throttled) == {THROTTLED}


def test_an_sdk_that_retries_writes_everything_at_the_tables_rate(endpoint):
    patient = make_session().client(
        "dynamodb",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 10, "mode": "standard"}, read_timeout=30),
    )
    name = provisioned_table(patient, 5)
    started = time.monotonic()
    for i in range(20):
        patient.put_item(TableName=name, Item={"pk": {"S": f"k{i}"}})
    elapsed = time.monotonic() - started
    count = patient.scan(TableName=name, Select="COUNT")["Count"]
    assert count == 20
    # 20 units at 5 per second (plus the first interval's allowance): not all at once.
    assert elapsed > 1.0, elapsed


def test_reads_past_the_provisioned_rate_are_throttled_too(ddb):
    name = provisioned_table(ddb, 5, rcu=1)
    ddb.put_item(TableName=name, Item={"pk": {"S": "r"}})
    errors = []
    for _ in range(12):
        try:
            ddb.get_item(TableName=name, Key={"pk": {"S": "r"}}, ConsistentRead=True)
        except ClientError as e:
            errors.append(code_and_message(e))
    assert errors, "12 strongly consistent reads at once into 1 RCU/s were all admitted"
    assert set(errors) == {THROTTLED}
