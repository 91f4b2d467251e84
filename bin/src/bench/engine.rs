//! The generator's connections: each a keep-alive HTTP/1.1 connection with one signed request
//! in flight, many of them driven by one single-threaded event loop.
//!
//! A thread per connection, blocked in `recv`, costs a context switch per request on each
//! side; on a two-core machine that shares its cores with the node, the generator's own
//! scheduling took about a third of the machine (docs/benchmarks.md). One event loop serves
//! every connection that is ready with one `epoll_wait`, so the generator takes far less of
//! the CPU the node is measured on. Requests are signed and encoded by [`Client`]; answers are
//! read here with their checksum and status checked, and the body is not parsed.

use std::time::Duration;

use ddb::client::{Client, ClientError, error_from_body, verify_crc32};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer header block read (ddbd's are a few hundred bytes).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// The largest answer body read (DynamoDB's largest, BatchGetItem, is 16 MiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One client connection of the generator.
pub(super) struct Connection {
    /// Signs and encodes requests; never used to send.
    signer: Client,
    /// `host:port` to connect to, and the endpoint as named in errors.
    address: String,
    endpoint: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    request: Vec<u8>,
    answer: Vec<u8>,
}

impl Connection {
    /// A connection to `client`'s endpoint (plain http), not yet open.
    pub fn new(signer: Client, timeout: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !signer.parsed_endpoint().tls,
            "ddbctl bench speaks plain http only; {} is https",
            signer.endpoint()
        );
        Ok(Connection {
            address: signer.parsed_endpoint().connect_to(),
            endpoint: signer.endpoint().to_owned(),
            signer,
            timeout,
            stream: None,
            request: Vec::with_capacity(4096),
            answer: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and waits for its whole answer; returns the answer body's length.
    /// A transport error or timeout closes the connection (the next call opens a new one).
    pub async fn call(&mut self, operation: &str, body: &[u8]) -> Result<usize, ClientError> {
        self.signer
            .encode_request(operation, body, &mut self.request)?;
        match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(Ok((status, body))) => {
                let body = &self.answer[body];
                if (200..300).contains(&status) {
                    Ok(body.len())
                } else {
                    Err(error_from_body(status, body))
                }
            }
            Ok(Err(error)) => {
                self.stream = None;
                Err(error)
            }
            Err(_) => {
                self.stream = None;
                Err(ClientError::Timeout {
                    endpoint: self.endpoint.clone(),
                    timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    /// Writes the encoded request and reads the answer into `self.answer`; returns its status
    /// and where its body is.
    async fn exchange(&mut self) -> Result<(u16, std::ops::Range<usize>), ClientError> {
        let transport = |detail: String| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            detail,
        };
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.address)
                    .await
                    .map_err(|e| transport(format!("connect to {}: {e}", self.address)))?;
                stream
                    .set_nodelay(true)
                    .map_err(|e| transport(e.to_string()))?;
                self.stream.insert(stream)
            }
        };
        stream
            .write_all(&self.request)
            .await
            .map_err(|e| transport(format!("send: {e}")))?;

        self.answer.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.answer)? {
                break head;
            }
            if self.answer.len() > MAX_HEAD_BYTES {
                return Err(ClientError::Protocol(
                    "answer headers larger than 16 KiB".to_owned(),
                ));
            }
            read_more(stream, &mut self.answer)
                .await
                .map_err(|e| transport(format!("receive: {e}")))?;
        };
        if head.body_len > MAX_BODY_BYTES {
            return Err(ClientError::Protocol(format!(
                "answer body of {} bytes",
                head.body_len
            )));
        }
        let end = head.head_len + head.body_len;
        while self.answer.len() < end {
            read_more(stream, &mut self.answer)
                .await
                .map_err(|e| transport(format!("receive: {e}")))?;
        }
        if self.answer.len() > end {
            return Err(ClientError::Protocol(
                "bytes after the answer, with no request outstanding".to_owned(),
            ));
        }
        let body = head.head_len..end;
        verify_crc32(head.crc32.as_deref(), &self.answer[body.clone()])?;
        if head.close {
            self.stream = None;
        }
        Ok((head.status, body))
    }
}

/// What the header block of an answer says.
struct Head {
    status: u16,
    head_len: usize,
    body_len: usize,
    crc32: Option<String>,
    close: bool,
}

/// Parses the answer's status line and headers once they are complete (`None` before).
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, ClientError> {
    let protocol = |detail: String| ClientError::Protocol(detail);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(protocol(format!("malformed answer: {e}"))),
    };
    let status = answer.code.unwrap_or_default();
    let mut body_len = None;
    let mut crc32 = None;
    let mut close = false;
    for header in answer.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            body_len = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| protocol(format!("bad content-length {value:?}")))?,
            );
        } else if header.name.eq_ignore_ascii_case("x-amz-crc32") {
            crc32 = Some(value.to_owned());
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(protocol(format!(
                "answer with transfer-encoding {value}, which the generator does not read"
            )));
        }
    }
    let body_len = body_len.ok_or_else(|| protocol("answer without content-length".to_owned()))?;
    Ok(Some(Head {
        status,
        head_len,
        body_len,
        crc32,
        close,
    }))
}

/// Reads what the socket has into `buf`; the peer closing the connection is an error.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.reserve(4096);
    if stream.read_buf(buf).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use ddb::client::ClientConfig;
    use ddb::sigv4::Credential;

    use super::*;

    /// A server that answers each request it reads on a connection with the next of
    /// `answers` (`None`: close the connection instead), and reports the requests it read.
    fn scripted_server(
        answers: Vec<Option<Vec<u8>>>,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            let mut answers = answers.into_iter();
            'connections: while let Ok((mut socket, _)) = listener.accept() {
                loop {
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read one request: headers, then its content-length of body.
                    while !request_complete(&request) {
                        match socket.read(&mut chunk) {
                            // The client closed this connection: wait for its next one,
                            // unless every answer was given.
                            Ok(0) | Err(_) if answers.len() == 0 => break 'connections,
                            Ok(0) | Err(_) => continue 'connections,
                            Ok(n) => request.extend_from_slice(&chunk[..n]),
                        }
                    }
                    requests.push(String::from_utf8_lossy(&request).into_owned());
                    match answers.next() {
                        Some(Some(answer)) => socket.write_all(&answer).unwrap(),
                        Some(None) => continue 'connections,
                        None => break 'connections,
                    }
                }
            }
            requests
        });
        (endpoint, server)
    }

    fn request_complete(bytes: &[u8]) -> bool {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = request.parse(bytes) else {
            return false;
        };
        let length = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        bytes.len() >= head + length
    }

    fn answer(status: &str, body: &str, extra: &str) -> Option<Vec<u8>> {
        Some(
            format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    fn connection(endpoint: &str) -> Connection {
        let client = Client::new(ClientConfig {
            endpoint: endpoint.to_owned(),
            credential: Credential::new("AKTEST", "SKTEST"),
            session_token: None,
            region: "us-east-1".to_owned(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        Connection::new(client, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn calls_are_signed_answers_checked_and_a_lost_connection_is_reopened() {
        let (endpoint, server) = scripted_server(vec![
            answer("200 OK", "{}", ""),
            answer(
                "400 Bad Request",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"no"}"#,
                "",
            ),
            answer("200 OK", "{}", "x-amz-crc32: 1\r\n"),
            None,
            answer("200 OK", r#"{"Item":{}}"#, ""),
        ]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut connection = connection(&endpoint);
        runtime.block_on(async {
            assert_eq!(connection.call("PutItem", b"{\"a\":1}").await.unwrap(), 2);
            let refused = connection.call("PutItem", b"{}").await.unwrap_err();
            assert_eq!(
                refused.service_code(),
                Some("ConditionalCheckFailedException")
            );
            let damaged = connection.call("GetItem", b"{}").await.unwrap_err();
            assert!(matches!(damaged, ClientError::Protocol(_)), "{damaged}");
            // The connection was dropped after the bad checksum; the server closes the next
            // one without answering, which is a transport error; the call after reconnects.
            let lost = connection.call("GetItem", b"{}").await.unwrap_err();
            assert!(matches!(lost, ClientError::Transport { .. }), "{lost}");
            assert_eq!(connection.call("GetItem", b"{}").await.unwrap(), 11);
        });
        drop(connection);
        let requests = server.join().unwrap();
        assert_eq!(requests.len(), 5);
        let first = &requests[0];
        assert!(first.starts_with("POST / HTTP/1.1\r\n"), "{first}");
        assert!(
            first.contains("x-amz-target: DynamoDB_20120810.PutItem\r\n"),
            "{first}"
        );
        assert!(
            first.contains("Authorization: AWS4-HMAC-SHA256 Credential=AKTEST/"),
            "{first}"
        );
        assert!(first.ends_with("\r\n\r\n{\"a\":1}"), "{first}");
    }

    #[test]
    fn an_https_endpoint_is_refused_up_front() {
        let client = Client::new(ClientConfig {
            endpoint: "https://127.0.0.1:8443".to_owned(),
            credential: Credential::new("AKTEST", "SKTEST"),
            session_token: None,
            region: "us-east-1".to_owned(),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        let refused = Connection::new(client, Duration::from_secs(5))
            .err()
            .unwrap();
        assert!(refused.to_string().contains("plain http"), "{refused}");
    }

    #[test]
    fn an_answer_head_is_read_once_complete() {
        let answer =
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\nx-amz-crc32: 123\r\n\r\nhello";
        assert!(parse_head(&answer[..20]).unwrap().is_none());
        let head = parse_head(answer).unwrap().unwrap();
        assert_eq!(head.status, 400);
        assert_eq!(head.body_len, 5);
        assert_eq!(&answer[head.head_len..], b"hello");
        assert_eq!(head.crc32.as_deref(), Some("123"));
        assert!(!head.close);
    }

    #[test]
    fn an_answer_the_generator_cannot_frame_is_a_protocol_error() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(parse_head(answer), Err(ClientError::Protocol(_))),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
