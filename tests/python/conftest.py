"""Shared fixtures: one real `ddbd` process for the whole session, and boto3 clients for it.

The fixture builds nothing: `scripts/test` builds `ddbd` and points `DDBD_BIN` at it. Without
`DDBD_BIN` it uses `target/debug/ddbd` under the repository root.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACCESS_KEY = "AKIDDBTESTPYTEST0001"
SECRET_KEY = "ddb-pytest-secret-key-0123456789abcdefghij"
REGION = "us-east-1"
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10


def _die_with_parent():
    """In the child before exec: ask Linux to SIGTERM ddbd if pytest dies without cleaning up."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddbd_binary():
    path = os.environ.get("DDBD_BIN", os.path.join("target", "debug", "ddbd"))
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    if not os.path.exists(path):
        pytest.exit(f"ddbd binary not found at {path}: build it or set DDBD_BIN", returncode=2)
    return path


@pytest.fixture(scope="session")
def endpoint():
    """Starts ddbd on a free port with a temporary data directory; yields its URL."""
    binary = _ddbd_binary()
    data_dir = tempfile.mkdtemp(prefix="ddbd-pytest-")
    log_path = os.path.join(data_dir, "ddbd.log")
    port = _free_port()
    env = dict(os.environ)
    env["DDB_ACCESS_KEY_ID"] = ACCESS_KEY
    env["DDB_SECRET_ACCESS_KEY"] = SECRET_KEY
    env.setdefault("DDB_LOG", "warn")
    # Admission stays on (GAC), so provisioned tables are throttled as on DynamoDB
    # (test_throttling.py), but the partition ceilings and the on-demand starting rate are
    # raised: the suite writes 400 KB items back to back with a client that does not retry,
    # which DynamoDB's 1,000 WCU/s per partition would throttle.
    config_path = os.path.join(data_dir, "ddbd.toml")
    with open(config_path, "w") as config:
        config.write(
            "[admission]\n"
            "partition_read_units = 1000000\n"
            "partition_write_units = 1000000\n"
            "on_demand_read_units = 1000000\n"
            "on_demand_write_units = 1000000\n"
        )
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [binary, "--config", config_path, "--data-dir", os.path.join(data_dir, "data"),
         "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ddbd exited with {proc.returncode}: {_tail(log_path)}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ddbd not healthy after {START_TIMEOUT_S}s: {_tail(log_path)}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def _tail(path):
    try:
        with open(path, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")
    except OSError:
        return "(no log)"


def make_session(access_key=ACCESS_KEY, secret_key=SECRET_KEY):
    return boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
    )


CLIENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
)


@pytest.fixture(scope="session")
def ddb(endpoint):
    """A low-level boto3 DynamoDB client."""
    return make_session().client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)


@pytest.fixture(scope="session")
def resource(endpoint):
    """A boto3 DynamoDB service resource."""
    return make_session().resource("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG)


def unique_name(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_table(ddb, hash_key=("pk", "S"), range_key=None, name=None, **extra):
    """Creates an on-demand table and returns its name."""
    name = name or unique_name()
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    defs = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
    if range_key:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        defs.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
    ddb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=defs,
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


@pytest.fixture(scope="session")
def hash_table(ddb):
    """A table keyed by `pk` (S) shared by tests that write distinct keys."""
    return create_table(ddb)


@pytest.fixture(scope="session")
def range_table(ddb):
    """A table keyed by `pk` (S) + `sk` (S)."""
    return create_table(ddb, range_key=("sk", "S"))


def error_of(excinfo):
    """(code, message) of a botocore ClientError."""
    err = excinfo.value.response["Error"]
    return err["Code"], err.get("Message", "")
