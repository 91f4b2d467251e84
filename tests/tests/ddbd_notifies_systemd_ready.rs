//! Under systemd (`Type=notify`), `ddbd` sends `READY=1` to `$NOTIFY_SOCKET` once it is
//! listening, so dependants start only when the node answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn ddbd_sends_ready_once_it_is_listening() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(ddb_tests::binary("ddbd"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("DDB_ACCESS_KEY_ID", "AKREADY")
        .env("DDB_SECRET_ACCESS_KEY", "ready-secret")
        .env("DDB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut message = [0u8; 64];
    let received = socket.recv(&mut message);

    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .split_once("http://")
        .map(|(_, a)| a.trim().to_string())
        .unwrap();
    // Ready means listening: /healthz answers right away.
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();

    let n = received.expect("ddbd never notified readiness");
    assert_eq!(&message[..n], b"READY=1");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
