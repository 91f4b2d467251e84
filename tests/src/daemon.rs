//! [`Daemon`]: a ddb daemon (`ddb-scrubber`, `ddb-canary`) started by a test from a
//! configuration file, listening on the address it prints once it serves.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running daemon, killed when dropped.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:PORT`, from its `… serving … on URL` line.
    pub url: String,
}

impl Daemon {
    /// Starts `binary --config config` with `DDB_LOG=warn` (its log on this test's standard
    /// error) and waits for the line that says where it serves.
    ///
    /// # Panics
    /// When it cannot be started or exits before serving.
    #[allow(clippy::unwrap_used, clippy::panic)]
    pub fn start(binary: &str, config: &Path) -> Self {
        let mut child = Command::new(crate::binary(binary))
            .arg("--config")
            .arg(config)
            .env("DDB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .rsplit("on ")
            .next()
            .filter(|url| url.starts_with("http://"))
            .map(|url| url.trim().to_string())
            .unwrap_or_else(|| panic!("{binary} said {line:?}"));
        Daemon { child, url }
    }

    /// Its port.
    ///
    /// # Panics
    /// Never: the URL always ends in a port.
    #[must_use]
    #[allow(clippy::unwrap_used)]
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ddbctl -o json <args>`: its exit code and the JSON it printed.
///
/// # Panics
/// When ddbctl cannot be run or prints no JSON (its output is shown).
#[allow(clippy::unwrap_used, clippy::panic)]
pub fn ddbctl_json(args: &[&str]) -> (i32, serde_json::Value) {
    let output = Command::new(crate::binary("ddbctl"))
        .args(["-o", "json"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "ddbctl {args:?}: {e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), json)
}
