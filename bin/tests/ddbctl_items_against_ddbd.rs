//! `ddbctl table …`, `ddbctl item …` and `ddbctl bench` against a real `ddbd` process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ddb_tests::NodeProcess;
use serde_json::{Value, json};

fn start_node() -> NodeProcess {
    NodeProcess::start(env!("CARGO_BIN_EXE_ddbd").as_ref()).unwrap()
}

/// `ddbctl` pointed at `endpoint` with the test node's credentials from the AWS variables,
/// insulated from the caller's own AWS and ddb settings.
fn ddbctl(endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ddbctl"));
    command
        .args(["--endpoint", endpoint])
        .env("AWS_ACCESS_KEY_ID", NodeProcess::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", NodeProcess::SECRET_ACCESS_KEY)
        .env("AWS_REGION", NodeProcess::REGION)
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("DDB_ENDPOINT");
    command
}

/// Runs `ddbctl --output json ARGS` and returns its output, whatever the exit status.
fn run(endpoint: &str, args: &[&str]) -> Output {
    ddbctl(endpoint)
        .args(["--output", "json"])
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed and returns its standard output as JSON.
fn json_of(endpoint: &str, args: &[&str]) -> Value {
    let output = run(endpoint, args);
    assert!(
        output.status.success(),
        "ddbctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn table_lifecycle_and_item_operations_round_trip_through_ddbd() {
    let node = start_node();
    let e = node.endpoint();

    let created = json_of(
        e,
        &[
            "table",
            "create",
            "orders",
            "--hash-key",
            "customer:S",
            "--range-key",
            "at:N",
        ],
    );
    assert_eq!(created["TableName"], "orders");
    assert_eq!(
        json_of(e, &["table", "ls"])["TableNames"],
        json!(["orders"])
    );
    let described = json_of(e, &["table", "describe", "orders"]);
    assert_eq!(described["TableStatus"], "ACTIVE");
    assert_eq!(
        described["KeySchema"][1],
        json!({"AttributeName": "at", "KeyType": "RANGE"})
    );
    assert_eq!(
        described["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );

    // DynamoDB JSON, plain JSON, and DynamoDB JSON from standard input.
    json_of(
        e,
        &[
            "item",
            "put",
            "orders",
            r#"{"customer":{"S":"ann"},"at":{"N":"1"},"amount":{"N":"10"}}"#,
        ],
    );
    json_of(
        e,
        &[
            "item",
            "put",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":2,"amount":20,"paid":true,"tags":["a",1]}"#,
        ],
    );
    let mut child = ddbctl(e)
        .args(["--output", "json", "item", "put", "orders", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"customer":{"S":"bob"},"at":{"N":"1"},"amount":{"N":"5"}}"#)
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    let got = json_of(
        e,
        &[
            "item",
            "get",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":2}"#,
            "--consistent",
        ],
    );
    assert_eq!(
        got["Item"],
        json!({"customer": {"S": "ann"}, "at": {"N": "2"}, "amount": {"N": "20"},
               "paid": {"BOOL": true}, "tags": {"L": [{"S": "a"}, {"N": "1"}]}})
    );
    let projected = json_of(
        e,
        &[
            "item",
            "get",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":2}"#,
            "--projection",
            "amount",
        ],
    );
    assert_eq!(projected["Item"], json!({"amount": {"N": "20"}}));

    let updated = json_of(
        e,
        &[
            "item",
            "update",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":1}"#,
            "--update",
            "SET amount = amount + :d",
            "--values",
            r#"{":d":5}"#,
        ],
    );
    assert_eq!(updated["Attributes"]["amount"], json!({"N": "15"}));

    // A failed condition: exit 1 and DynamoDB's error on one line.
    let refused = run(
        e,
        &[
            "item",
            "put",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":1}"#,
            "--condition",
            "attribute_not_exists(customer)",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "error: ConditionalCheckFailedException: The conditional request failed\n"
    );
    let unchanged = json_of(
        e,
        &[
            "item",
            "get",
            "orders",
            "--plain",
            r#"{"customer":"ann","at":1}"#,
        ],
    );
    assert_eq!(unchanged["Item"]["amount"], json!({"N": "15"}));

    // Query: one page of one item, then every page, newest first.
    let first_page = json_of(
        e,
        &[
            "item",
            "query",
            "orders",
            "--key-condition",
            "customer = :c",
            "--values",
            r#"{":c":{"S":"ann"}}"#,
            "--limit",
            "1",
        ],
    );
    assert_eq!(first_page["Count"], 1);
    assert!(first_page.get("LastEvaluatedKey").is_some());
    let all = json_of(
        e,
        &[
            "item",
            "query",
            "orders",
            "--key-condition",
            "customer = :c",
            "--plain",
            "--values",
            r#"{":c":"ann"}"#,
            "--limit",
            "1",
            "--all",
            "--reverse",
        ],
    );
    assert_eq!(all["Count"], 2);
    assert!(all["Pages"].as_u64().unwrap() >= 2, "{all}");
    assert_eq!(all["Items"][0]["at"], json!({"N": "2"}));
    assert!(all.get("LastEvaluatedKey").is_none());

    let filtered = json_of(
        e,
        &[
            "item",
            "scan",
            "orders",
            "--all",
            "--filter",
            "amount >= :m",
            "--plain",
            "--values",
            r#"{":m":15}"#,
        ],
    );
    assert_eq!(filtered["Count"], 2, "{filtered}");
    assert_eq!(filtered["ScannedCount"], 3);
    let mut segmented = 0;
    for segment in ["0", "1"] {
        let page = json_of(
            e,
            &[
                "item",
                "scan",
                "orders",
                "--all",
                "--segment",
                segment,
                "--total-segments",
                "2",
            ],
        );
        segmented += page["Count"].as_u64().unwrap();
    }
    assert_eq!(segmented, 3);

    let deleted = json_of(
        e,
        &[
            "item",
            "delete",
            "orders",
            "--plain",
            r#"{"customer":"bob","at":1}"#,
            "--return",
            "all-old",
        ],
    );
    assert_eq!(deleted["Attributes"]["amount"], json!({"N": "5"}));
    let gone = json_of(
        e,
        &[
            "item",
            "get",
            "orders",
            "--plain",
            r#"{"customer":"bob","at":1}"#,
        ],
    );
    assert!(gone.get("Item").is_none(), "{gone}");

    json_of(e, &["table", "delete", "orders"]);
    assert_eq!(json_of(e, &["table", "ls"])["TableNames"], json!([]));
    let missing = run(e, &["table", "describe", "orders"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).starts_with("error: ResourceNotFoundException: "),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn table_output_shows_items_as_rows_with_attribute_columns() {
    let node = start_node();
    let e = node.endpoint();
    json_of(e, &["table", "create", "people", "--hash-key", "id:S"]);
    json_of(
        e,
        &[
            "item",
            "put",
            "people",
            "--plain",
            r#"{"id":"p1","name":"Ann","age":41}"#,
        ],
    );
    let output = ddbctl(e).args(["item", "scan", "people"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let header = text.lines().nth(1).unwrap_or_default();
    let id = header.find(" id ").unwrap();
    assert!(
        id < header.find(" age ").unwrap() && id < header.find(" name ").unwrap(),
        "{text}"
    );
    assert!(text.contains(" Ann ") && text.contains(" 41 "), "{text}");
    assert!(text.contains("1 item (1 scanned, 1 pages)"), "{text}");
}

#[test]
fn unreachable_endpoint_exits_2_with_a_clear_message() {
    // Port 1 on loopback: nothing listens there.
    let output = run("http://127.0.0.1:1", &["table", "ls"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with("error: cannot reach http://127.0.0.1:1: ")
            && message.lines().count() == 1,
        "{message}"
    );
    // https goes through TLS, and fails the same clear way when nothing listens.
    let https = run("https://127.0.0.1:1", &["table", "ls"]);
    assert_eq!(https.status.code(), Some(2));
    assert!(
        stderr(&https).starts_with("error: cannot reach https://127.0.0.1:1: "),
        "{}",
        stderr(&https)
    );
}

#[test]
fn wrong_secret_is_refused_by_the_node() {
    let node = start_node();
    let output = ddbctl(node.endpoint())
        .args(["table", "ls"])
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("error: "),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("Signature"), "{}", stderr(&output));
}

#[test]
fn bench_runs_every_workload_without_errors() {
    let node = start_node();
    for (index, workload) in ["put", "get-strong", "get-eventual", "query", "mix"]
        .into_iter()
        .enumerate()
    {
        // Every other workload with its two clients on two event loops instead of one.
        let client_threads = if index % 2 == 0 { "1" } else { "2" };
        let data_dir = node.data_dir().display().to_string();
        let mut args = vec![
            "bench",
            "--workload",
            workload,
            "--duration",
            "2",
            "--concurrency",
            "2",
            "--client-threads",
            client_threads,
            "--items",
            "200",
            "--item-bytes",
            "64",
        ];
        if workload == "put" {
            // The disk's raw sync rate around the run, probed in the node's data directory.
            args.extend(["--sync-baseline", data_dir.as_str()]);
        }
        let report = json_of(node.endpoint(), &args);
        let baseline = &report["disk_sync_baseline"];
        if workload == "put" {
            for when in ["before", "after"] {
                assert!(baseline[when]["syncs"].as_u64().unwrap() > 0, "{report}");
                assert!(
                    baseline[when]["per_sec"].as_f64().unwrap() > 0.0,
                    "{report}"
                );
            }
            let ratio = baseline["ops_per_raw_sync"].as_f64().unwrap();
            assert!(ratio > 0.0, "{report}");
            let probes: Vec<_> = std::fs::read_dir(node.data_dir())
                .unwrap()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains("sync-probe"))
                .collect();
            assert!(probes.is_empty(), "probe left behind: {probes:?}");
        } else {
            assert!(baseline.is_null(), "{report}");
        }
        assert_eq!(report["workload"], workload);
        assert!(report["ops"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["errors"], 0, "{report}");
        assert_eq!(report["errors_by_code"], json!({}), "{report}");
        let latency = &report["latency_us"];
        assert!(latency["p50"].as_f64().unwrap() > 0.0, "{report}");
        assert!(
            latency["p50"].as_f64() <= latency["p99"].as_f64(),
            "{report}"
        );
        assert!(
            latency["p999"].as_f64() <= latency["max"].as_f64(),
            "{report}"
        );
        // The node's own account of the run: every write it committed, each stage a part of
        // what the client waited; a read-only run wrote nothing.
        let stages = report["node_stages"].as_array();
        if workload == "put" || workload == "mix" {
            let stages = stages.unwrap_or_else(|| panic!("no node stages in {report}"));
            let stage = |name: &str| {
                stages
                    .iter()
                    .find(|s| s["stage"] == name)
                    .unwrap_or_else(|| panic!("no {name} stage in {report}"))
            };
            let writes = if workload == "put" {
                report["ops"].as_u64().unwrap()
            } else {
                1
            };
            // Every write passes each writer stage; the syncer flushes and applies batches.
            for name in ["handoff", "lock", "decide", "commit", "wake"] {
                assert!(
                    stage(name)["count"].as_u64().unwrap() >= writes,
                    "{name}: {report}"
                );
            }
            for name in ["flush", "apply"] {
                assert!(
                    stage(name)["count"].as_u64().unwrap() >= 1,
                    "{name}: {report}"
                );
            }
            // A stage is part of a write's latency; in `mix` the client's mean also averages in
            // reads, which never commit, so only `put` bounds a stage by the client's mean.
            let client_mean = latency["mean"].as_f64().unwrap();
            for name in ["lock", "decide", "commit"] {
                let mean = stage(name)["mean_us"].as_f64().unwrap();
                assert!(mean > 0.0, "{name}: {report}");
                if workload == "put" {
                    assert!(mean <= client_mean, "{name}: {report}");
                }
            }
        } else {
            assert!(stages.is_none(), "{report}");
        }
    }
    let too_long = run(node.endpoint(), &["bench", "--duration", "3601"]);
    assert_eq!(too_long.status.code(), Some(2));
    let nowhere = run(
        node.endpoint(),
        &[
            "bench",
            "--duration",
            "1",
            "--sync-baseline",
            "/nonexistent/ddb-data",
        ],
    );
    assert_eq!(nowhere.status.code(), Some(2), "{}", stderr(&nowhere));
    assert!(
        stderr(&nowhere).contains("/nonexistent/ddb-data: not a directory"),
        "{}",
        stderr(&nowhere)
    );
}
