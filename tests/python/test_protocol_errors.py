"""The wire protocol: authentication, malformed bodies, unknown operations (raw HTTP)."""

import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, CLIENT_CONFIG, REGION, SECRET_KEY, error_of, make_session


def raw_post(endpoint, target, body, sign=True, access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    """POSTs `body` (bytes) with X-Amz-Target `target`; returns (status, parsed JSON)."""
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": target,
    }
    if sign:
        request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers=headers)
        SigV4Auth(Credentials(access_key, secret_key), "dynamodb", REGION).add_auth(request)
        headers = dict(request.headers.items())
    req = urllib.request.Request(endpoint + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def short_type(body):
    return body["__type"].split("#")[-1]


def test_healthz(endpoint):
    with urllib.request.urlopen(endpoint + "/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read().strip() == b"ok"


def test_signed_raw_request_works(endpoint):
    status, body = raw_post(endpoint, "DynamoDB_20120810.ListTables", b"{}")
    assert status == 200
    assert "TableNames" in body


def test_missing_signature(endpoint):
    status, body = raw_post(endpoint, "DynamoDB_20120810.ListTables", b"{}", sign=False)
    assert status == 400
    assert short_type(body) == "MissingAuthenticationTokenException"
    assert body["message"] == "Request is missing Authentication Token"


def test_wrong_secret(endpoint):
    client = make_session(secret_key="not-the-secret").client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)
    with pytest.raises(ClientError) as e:
        client.list_tables()
    code, message = error_of(e)
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match the signature you provided.")


def test_unknown_access_key(endpoint):
    client = make_session(access_key="AKIDUNKNOWNUNKNOWN00").client(
        "dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG
    )
    with pytest.raises(ClientError) as e:
        client.list_tables()
    assert error_of(e) == ("UnrecognizedClientException", "The security token included in the request is invalid.")


def test_tampered_body_fails_signature(endpoint):
    body = b'{"Limit": 1}'
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "dynamodb", REGION).add_auth(request)
    req = urllib.request.Request(endpoint + "/", data=b'{"Limit": 2}', headers=dict(request.headers.items()), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert short_type(json.loads(e.value.read())) == "InvalidSignatureException"


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"string"'])
def test_malformed_body_is_serialization_exception(endpoint, body):
    status, resp = raw_post(endpoint, "DynamoDB_20120810.ListTables", body)
    assert status == 400
    assert short_type(resp) == "SerializationException"


def test_wrong_parameter_type_is_serialization_exception(endpoint):
    status, resp = raw_post(endpoint, "DynamoDB_20120810.DescribeTable", b'{"TableName": 5}')
    assert status == 400
    assert short_type(resp) == "SerializationException"


@pytest.mark.parametrize("target", ["DynamoDB_20120810.Frobnicate", "Bogus.ListTables", "DynamoDB_20120810.TransactWriteItemz"])
def test_unknown_operation(endpoint, target):
    status, resp = raw_post(endpoint, target, b"{}")
    assert status == 400
    assert short_type(resp) == "UnknownOperationException"


def test_error_responses_carry_request_id_and_crc(endpoint):
    req = urllib.request.Request(
        endpoint + "/",
        data=b"{}",
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.ListTables"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.headers.get("x-amzn-RequestId")
    assert e.value.headers.get("x-amz-crc32")
