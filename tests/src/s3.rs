//! Real S3-compatible servers for archive tests (`docs/archive-testing.md`):
//!
//! - [`S3sFs`]: `s3s-fs`, objects as files in a directory, SigV4 checked against fixed test keys,
//!   `If-None-Match: *` honoured. The main test server; it survives a restart on the same port.
//! - [`Moto`]: moto's server, in memory, any signature accepted; its create-only writes are atomic
//!   under concurrency, so the create-only race runs against it.
//!
//! Both implement [`S3Server`]: their endpoint, ddb's archive URL for a bucket and prefix, the
//! `AWS_*` environment for a child process, and an opened [`Archive`].
//!
//! `scripts/install-s3-servers` installs both; `scripts/test` exports their paths as `DDB_S3S_FS`
//! and `DDB_MOTO_SERVER`. Without those variables the default install locations under the
//! workspace's `target/` are used. A missing server fails the test with a message saying how to
//! install it: these tests are never skipped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ddb::archive::{Archive, ArchiveUrl};

/// The access key id the servers are started with (and [`S3sFs`] checks).
pub const ACCESS_KEY_ID: &str = "DDBS3TESTKEY00000001";
/// The secret of [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "ddb-s3-tests-secret-access-key-00000000";
/// The region archive URLs name.
pub const REGION: &str = "us-east-1";

/// How long a server may take to answer its first request (moto starts a Python interpreter,
/// which on a busy 2-core machine takes seconds).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many free ports to try when another process takes the chosen one first.
const PORT_TRIES: usize = 5;

/// A running `s3s-fs` on `127.0.0.1`, keeping its buckets under a directory the caller owns.
/// Killed when dropped.
pub struct S3sFs {
    server: ServerProcess,
    dir: PathBuf,
}

impl S3sFs {
    /// Starts `s3s-fs` on a free port with `dir` (created if missing) as its data directory,
    /// and waits until it answers.
    ///
    /// # Panics
    /// When the binary is not installed (the message says to run `scripts/install-s3-servers`),
    /// or the server does not answer within a minute (the message includes its log).
    pub fn start(dir: &Path) -> Self {
        if let Err(e) = std::fs::create_dir_all(dir) {
            panic!("creating the s3s-fs data directory {}: {e}", dir.display());
        }
        let program = installed("s3s-fs", "DDB_S3S_FS", "target/tools/bin/s3s-fs");
        let dir = dir.to_path_buf();
        let data = dir.clone();
        let server = ServerProcess::start("s3s-fs", program, move |port| {
            let (port, data) = (port.to_string(), data.display().to_string());
            [
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--access-key",
                ACCESS_KEY_ID,
                "--secret-key",
                SECRET_ACCESS_KEY,
                &data,
            ]
            .map(String::from)
            .to_vec()
        });
        S3sFs { server, dir }
    }

    /// Kills the server (SIGKILL: nothing is flushed or shut down). Requests fail until
    /// [`S3sFs::restart`].
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts the server again on the same directory and port, and waits until it answers.
    ///
    /// # Panics
    /// As [`S3sFs::start`], or when the port was taken meanwhile.
    pub fn restart(&mut self) {
        self.server.restart();
    }

    /// The server's data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file in which the server keeps object `key` of `bucket` (write it to damage the
    /// object behind the server's back).
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.dir.join(bucket).join(key)
    }
}

/// A running moto S3 server on `127.0.0.1`, in memory. Killed when dropped.
pub struct Moto {
    server: ServerProcess,
}

impl Moto {
    /// Starts `moto_server` on a free port and waits until it answers.
    ///
    /// # Panics
    /// When moto is not installed (the message says to run `scripts/install-s3-servers`), or
    /// the server does not answer within a minute (the message includes its log).
    pub fn start() -> Self {
        let program = installed(
            "moto_server",
            "DDB_MOTO_SERVER",
            "target/pyenv/bin/moto_server",
        );
        let server = ServerProcess::start("moto", program, |port| {
            ["-H", "127.0.0.1", "-p", &port.to_string()]
                .map(String::from)
                .to_vec()
        });
        Moto { server }
    }

    /// The body of an unsigned `GET path` (moto accepts any signature, and none), e.g.
    /// `/bucket?versioning`.
    ///
    /// # Panics
    /// When the server does not answer.
    pub fn get(&self, path: &str) -> String {
        match http_request(self.server.port, "GET", path) {
            Some((_, body)) => body,
            None => panic!("moto did not answer GET {path}"),
        }
    }
}

/// What every test server offers: where it listens, and how ddb's code and child processes
/// reach it.
pub trait S3Server {
    /// `http://127.0.0.1:PORT`.
    fn endpoint(&self) -> String;

    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:PORT&region=us-east-1`, ddb's archive URL
    /// (an empty `prefix` names the bucket's root).
    fn archive_url(&self, bucket: &str, prefix: &str) -> String {
        let location = if prefix.is_empty() {
            bucket.to_owned()
        } else {
            format!("{bucket}/{prefix}")
        };
        format!(
            "s3://{location}?endpoint={}&region={REGION}",
            self.endpoint()
        )
    }

    /// The `AWS_*` variables a child process needs to reach the server: the test keys and the
    /// region.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
        ]
    }

    /// [`S3Server::env`] as owned pairs, for [`crate::ArchiverProcess`].
    fn owned_env(&self) -> Vec<(String, String)> {
        self.env()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }

    /// Runs the real `ddbctl archive bucket init --archive URL EXTRA…` against the server.
    ///
    /// # Panics
    /// When it does not exit 0.
    fn init_bucket(&self, url: &str, extra: &[&str]) {
        let output = std::process::Command::new(crate::binary("ddbctl"))
            .args(["archive", "bucket", "init", "--archive", url])
            .args(extra)
            .envs(self.env())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running ddbctl: {e}"));
        assert!(
            output.status.success(),
            "bucket init: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Opens `prefix` in `bucket` as ddb's code does, with [`S3Server::env`] as the
    /// environment.
    ///
    /// # Panics
    /// When the URL does not parse (a bad bucket name or prefix).
    fn open_archive(&self, bucket: &str, prefix: &str) -> Archive {
        let url = self.archive_url(bucket, prefix);
        let env = self.env();
        ArchiveUrl::parse(&url)
            .unwrap_or_else(|e| panic!("{e}"))
            .open_archive(|name| {
                env.iter()
                    .find(|(variable, _)| *variable == name)
                    .map(|(_, value)| value.clone())
            })
            .unwrap_or_else(|e| panic!("opening {url}: {e}"))
    }
}

impl S3Server for S3sFs {
    fn endpoint(&self) -> String {
        self.server.endpoint()
    }
}

impl S3Server for Moto {
    fn endpoint(&self) -> String {
        self.server.endpoint()
    }
}

/// The path of an installed server: `$variable` if set, else `default` under the workspace.
fn installed(name: &str, variable: &str, default: &str) -> PathBuf {
    let path = match std::env::var_os(variable) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(default),
    };
    if !path.is_file() {
        panic!(
            "{name} is not installed at {} ({variable} {}): run scripts/install-s3-servers \
             (scripts/test does it for you), or point {variable} at the binary",
            path.display(),
            if std::env::var_os(variable).is_some() {
                "is set"
            } else {
                "is not set"
            },
        );
    }
    path
}

/// One server process on a port it keeps across restarts, logging to a file.
struct ServerProcess {
    name: &'static str,
    program: PathBuf,
    arguments: Box<dyn Fn(u16) -> Vec<String> + Send>,
    port: u16,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl ServerProcess {
    fn start(
        name: &'static str,
        program: PathBuf,
        arguments: impl Fn(u16) -> Vec<String> + Send + 'static,
    ) -> Self {
        // Outside the data directory: s3s-fs would take a file there for a bucket's.
        let log = tempfile::Builder::new()
            .prefix(&format!("ddb-tests-{name}-log-"))
            .tempfile()
            .unwrap_or_else(|e| panic!("creating a log file for {name}: {e}"));
        let mut server = ServerProcess {
            name,
            program,
            arguments: Box::new(arguments),
            port: 0,
            child: None,
            log,
        };
        // Another process may take the free port between our probe and the server's bind;
        // the server then exits, and a new port is tried.
        for _ in 0..PORT_TRIES {
            server.port = free_port();
            if server.spawn_and_wait() {
                return server;
            }
        }
        panic!(
            "{}",
            server.failure(&format!("did not start on any of {PORT_TRIES} free ports"))
        );
    }

    fn restart(&mut self) {
        self.stop();
        if !self.spawn_and_wait() {
            panic!("{}", self.failure("did not restart"));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process on `self.port`; true once it answers HTTP, false if it exited first.
    fn spawn_and_wait(&mut self) -> bool {
        let log = |log: &tempfile::NamedTempFile| {
            log.as_file()
                .try_clone()
                .unwrap_or_else(|e| panic!("opening {}'s log: {e}", self.name))
        };
        let child = Command::new(&self.program)
            .args((self.arguments)(self.port))
            .stdin(Stdio::null())
            .stdout(log(&self.log))
            .stderr(log(&self.log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({}): {e}", self.name, self.program.display()));
        let child = self.child.insert(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(_)) | Err(_) = child.try_wait() {
                self.child = None;
                return false;
            }
            // Any HTTP answer (s3s-fs refuses an unsigned request) means it is serving.
            if http_request(self.port, "GET", "/").is_some() {
                return true;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}",
                    self.failure(&format!("did not answer within {START_TIMEOUT:?}"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        format!(
            "{} on port {} {what}; its log:\n{log}",
            self.name, self.port
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("asking the kernel for a free port: {e}"))
}

/// The status code and body of an unsigned, empty `method path` request to `127.0.0.1:port`,
/// if anything answers.
fn http_request(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    // A server that keeps the connection open past its answer ends the read with a timeout;
    // what arrived is still the answer.
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let status = response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, body.to_owned()))
}
