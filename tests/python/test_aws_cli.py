"""aws-cli against ddbd: the CLI's own request building, pagination and output."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ACCESS_KEY, REGION, SECRET_KEY, unique_name


def aws_binary():
    here = os.path.join(os.path.dirname(sys.executable), "aws")
    return here if os.path.exists(here) else shutil.which("aws")


@pytest.fixture(scope="module")
def aws(endpoint, tmp_path_factory):
    binary = aws_binary()
    if binary is None:
        pytest.fail("aws-cli is not installed (scripts/test installs it into target/pyenv)")
    home = tmp_path_factory.mktemp("awshome")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }

    def run(*args, check=True):
        proc = subprocess.run(
            [binary, "dynamodb", *args, "--endpoint-url", endpoint, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout) if proc.stdout.strip() else None
        return proc

    return run


def test_cli_table_and_item_round_trip(aws):
    name = unique_name("cli")
    created = aws(
        "create-table",
        "--table-name", name,
        "--attribute-definitions", "AttributeName=pk,AttributeType=S", "AttributeName=sk,AttributeType=N",
        "--key-schema", "AttributeName=pk,KeyType=HASH", "AttributeName=sk,KeyType=RANGE",
        "--billing-mode", "PAY_PER_REQUEST",
    )
    assert created["TableDescription"]["TableName"] == name
    aws("wait", "table-exists", "--table-name", name)
    for i in range(5):
        aws("put-item", "--table-name", name, "--item", json.dumps({"pk": {"S": "a"}, "sk": {"N": str(i)}}))
    got = aws("get-item", "--table-name", name, "--key", '{"pk": {"S": "a"}, "sk": {"N": "3"}}')
    assert got["Item"]["sk"] == {"N": "3"}
    # The CLI pages on its own with --page-size and merges the result.
    queried = aws(
        "query",
        "--table-name", name,
        "--key-condition-expression", "pk = :p AND sk >= :lo",
        "--expression-attribute-values", '{":p": {"S": "a"}, ":lo": {"N": "1"}}',
        "--page-size", "2",
    )
    assert [it["sk"]["N"] for it in queried["Items"]] == ["1", "2", "3", "4"]
    scanned = aws("scan", "--table-name", name, "--select", "COUNT")
    assert scanned["Count"] == 5
    assert name in aws("list-tables")["TableNames"]
    aws("delete-table", "--table-name", name)


def test_cli_reports_conditional_failure(aws):
    name = unique_name("clic")
    aws(
        "create-table",
        "--table-name", name,
        "--attribute-definitions", "AttributeName=pk,AttributeType=S",
        "--key-schema", "AttributeName=pk,KeyType=HASH",
        "--billing-mode", "PAY_PER_REQUEST",
    )
    aws("put-item", "--table-name", name, "--item", '{"pk": {"S": "x"}}')
    proc = aws(
        "put-item",
        "--table-name", name,
        "--item", '{"pk": {"S": "x"}}',
        "--condition-expression", "attribute_not_exists(pk)",
        check=False,
    )
    assert proc.returncode != 0
    assert "ConditionalCheckFailedException" in proc.stderr


def test_cli_describe_missing_table(aws):
    proc = aws("describe-table", "--table-name", "cli-no-such-table", check=False)
    assert proc.returncode != 0
    assert "ResourceNotFoundException" in proc.stderr
