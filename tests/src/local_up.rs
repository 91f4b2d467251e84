//! A running `ddbctl local up --no-status` for cross-process tests.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use ddb::client::{Client, ClientConfig};
use ddb::sigv4::Credential;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// ddbctl waits up to 30 s for the nodes itself; this leaves room for a slow machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// `ddbctl local up` in its own process group; dropping it kills the whole group (ddbctl and
/// the ddbd processes it started), so a failing test leaves nothing behind.
pub struct LocalUp {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    nodes: u16,
    base: u16,
}

impl LocalUp {
    /// Starts `nodes` nodes under `dir` with API ports from `base`, plus `extra` arguments.
    ///
    /// # Panics
    /// When ddbctl cannot be started.
    #[allow(clippy::unwrap_used)]
    pub fn start(dir: &Path, base: u16, nodes: u16, extra: &[&str]) -> Self {
        LocalUp::start_with_env(dir, base, nodes, extra, &[])
    }

    /// [`LocalUp::start`] with extra environment variables for ddbctl (and, for those it
    /// passes on, such as `DDB_FAULT_INJECTION`, its nodes).
    ///
    /// # Panics
    /// When ddbctl cannot be started.
    ///
    /// Like [`LocalUp::start`] it runs no canaries (`--no-canary`): their tables would mix
    /// with the ones a test makes; [`LocalUp::start_whole`] runs everything.
    #[allow(clippy::unwrap_used)]
    pub fn start_with_env(
        dir: &Path,
        base: u16,
        nodes: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut args = vec!["--no-canary"];
        args.extend_from_slice(extra);
        LocalUp::start_whole(dir, base, nodes, &args, env)
    }

    /// The whole system as a user gets it from `ddbctl local up`: nodes, archivers, the
    /// scrubber and a canary per AZ, plus `extra` arguments and `env`.
    ///
    /// # Panics
    /// When ddbctl cannot be started.
    #[allow(clippy::unwrap_used)]
    pub fn start_whole(
        dir: &Path,
        base: u16,
        nodes: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(crate::binary("ddbctl"))
            .args(["local", "up", "--no-status", "--dir"])
            .arg(dir)
            .args(["--base-port", &base.to_string()])
            .args(["--nodes", &nodes.to_string()])
            .args(extra)
            .env("DDB_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        LocalUp {
            child,
            lines,
            seen: Vec::new(),
            nodes,
            base,
        }
    }

    /// Waits for `ready: N nodes` and returns the `export AWS_…` line printed before it.
    ///
    /// # Panics
    /// When the line does not come in time.
    pub fn wait_for_ready(&mut self) -> String {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no `ready:` line within {READY_TIMEOUT:?} ({e}); output so far:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if line.starts_with("ready:") {
                assert_eq!(line, format!("ready: {} nodes", self.nodes));
                return self
                    .seen
                    .iter()
                    .rev()
                    .find(|l| l.starts_with("export AWS_ACCESS_KEY_ID="))
                    .cloned()
                    .unwrap_or_else(|| panic!("no export line in:\n{}", self.seen.join("\n")));
            }
        }
    }

    /// The API ports of the nodes.
    pub fn api_ports(&self) -> impl Iterator<Item = u16> + use<> {
        self.base..self.base + self.nodes
    }

    /// Sends SIGINT to ddbctl (as Ctrl-C would) and waits for it to exit.
    ///
    /// # Panics
    /// When it does not exit in time.
    #[allow(clippy::unwrap_used)]
    pub fn interrupt_and_wait(&mut self) -> ExitStatus {
        kill_process(Pid::from_child(&self.child), Signal::INT).unwrap();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "ddbctl still running {EXIT_TIMEOUT:?} after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        // The group outlives ddbctl while any ddbd it started is alive; ESRCH means none is.
        let _ = kill_process_group(Pid::from_child(&self.child), Signal::KILL);
        let _ = self.child.wait();
    }
}

/// `export AWS_ACCESS_KEY_ID=K AWS_SECRET_ACCESS_KEY=S AWS_REGION=R` → (K, S).
///
/// # Panics
/// When a name is missing.
pub fn parse_export(line: &str) -> (String, String) {
    let value = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
            .to_string()
    };
    (value("AWS_ACCESS_KEY_ID="), value("AWS_SECRET_ACCESS_KEY="))
}

/// A signed client for the node on `port`.
///
/// # Panics
/// When the client cannot be built.
#[allow(clippy::unwrap_used)]
pub fn client(port: u16, key_id: &str, secret: &str) -> Client {
    Client::new(ClientConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        credential: Credential::new(key_id, secret),
        session_token: None,
        region: "us-east-1".to_string(),
        timeout: Duration::from_secs(10),
    })
    .unwrap()
}

/// SIGKILLs the `ddbd` that `ddbctl local up` started for node `id` of the cluster in `dir`
/// (found by its configuration path on its command line).
///
/// # Panics
/// When no such process runs.
pub fn kill_node(dir: &Path, id: u32) {
    let config = dir.join(format!("node{id}")).join("ddbd.toml");
    let config = config.to_string_lossy().into_owned();
    let mut killed = false;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("ddbd")
            && cmdline.contains(&config)
            && let Some(pid) = Pid::from_raw(pid)
        {
            killed |= kill_process(pid, Signal::KILL).is_ok();
        }
    }
    assert!(killed, "no ddbd running with {config}");
}

/// A node of a `ddbctl local up` cluster started again by a test after [`kill_node`]; killed
/// when dropped (ddbctl does not know it).
pub struct RestartedNode(Child);

impl Drop for RestartedNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node `id` of the cluster in `dir` again, as `ddbctl local up` does (`ddbd --config
/// nodeN/ddbd.toml`, output appended to its log), with `env` added.
///
/// # Panics
/// When ddbd cannot be started.
#[allow(clippy::unwrap_used)]
pub fn restart_node(dir: &Path, id: u32, env: &[(&str, &str)]) -> RestartedNode {
    let node = dir.join(format!("node{id}"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.join("ddbd.log"))
        .unwrap();
    let child = Command::new(crate::binary("ddbd"))
        .arg("--config")
        .arg(node.join("ddbd.toml"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    RestartedNode(child)
}

/// The body of `GET path` from the node on `port` (plain HTTP/1.1), if it answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// `method path` on the internal API of the node whose API listens on `port`, with `token`
/// (a node's own, or [`ddb::server::cluster_internal_token`]): the status code and body.
///
/// # Panics
/// When the node cannot be reached.
#[allow(clippy::unwrap_used)]
pub fn internal_call(port: u16, token: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}: {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        ddb::server::INTERNAL_TOKEN_HEADER
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Creates on-demand table `name` with a string hash key `k`.
///
/// # Panics
/// When the node refuses.
pub fn create_hash_table(client: &Client, name: &str) {
    let request = serde_json::json!({
        "TableName": name,
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    if let Err(e) = client.call("CreateTable", &request) {
        panic!("CreateTable {name}: {e}");
    }
}
