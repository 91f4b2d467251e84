//! The archiver's side of the node's internal API (`ddb::server` `internal` routes): what the
//! node's partitions committed, digests at LSNs, watermark reports, the catalog and snapshot
//! streams. Blocking calls; the async loop runs them on blocking threads.

use std::path::Path;
use std::time::Duration;

use ddb::digest::StateDigest;
use ddb::server::{ArchivePartitions, DigestPoint, INTERNAL_TOKEN_HEADER, WatermarkReport};
use ddb::wal::Lsn;

/// A connection to the node beside the archiver.
#[derive(Clone)]
pub struct NodeClient {
    agent: ureq::Agent,
    /// For snapshot streams, which may take long.
    streaming: ureq::Agent,
    base: String,
    token: String,
}

impl NodeClient {
    /// A client of the node at `base` (e.g. `http://127.0.0.1:8000`), authenticated with the
    /// token in the node's data directory.
    pub fn new(base: &str, node_data_dir: &Path) -> Result<Self, String> {
        let token = ddb::server::read_internal_token(node_data_dir).map_err(|e| {
            format!(
                "reading the node's internal token in {} (has the node started there?): {e}",
                node_data_dir.display()
            )
        })?;
        let agent = |timeout: Duration| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .max_redirects(0)
                .build()
                .into()
        };
        let base = base.trim_end_matches('/');
        let base = if base.contains("://") {
            base.to_string()
        } else {
            format!("http://{base}")
        };
        Ok(NodeClient {
            agent: agent(Duration::from_secs(5)),
            streaming: agent(Duration::from_secs(3600)),
            base,
            token,
        })
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, String> {
        let answer = self
            .agent
            .get(format!("{}{path}", self.base))
            .header(INTERNAL_TOKEN_HEADER, &self.token)
            .call()
            .map_err(|e| format!("node {}: {e}", self.base))?;
        read_answer(answer, &self.base, path)
    }

    /// Every replica the node holds and where its log and archiving stand.
    pub fn partitions(&self) -> Result<ArchivePartitions, String> {
        let body = self.get("/internal/archive/partitions")?;
        serde_json::from_slice(&body).map_err(|e| format!("partition listing: {e}"))
    }

    /// The newest state digest the node knows for `partition` at or below `at_most`.
    pub fn digest_at_or_below(
        &self,
        partition: u64,
        at_most: Lsn,
    ) -> Result<Option<(Lsn, StateDigest)>, String> {
        let body = self.get(&format!(
            "/internal/archive/digest?partition={partition}&at_most={}",
            at_most.0
        ))?;
        let point: DigestPoint =
            serde_json::from_slice(&body).map_err(|e| format!("digest answer: {e}"))?;
        if point.lsn.is_some() && point.decode().is_none() {
            return Err("the node sent a digest that does not decode".to_string());
        }
        Ok(point.decode())
    }

    /// Tells the node the archive holds `partition` through `lsn`; returns its watermark.
    pub fn report_watermark(&self, partition: u64, lsn: Lsn) -> Result<Lsn, String> {
        let body = serde_json::to_vec(&WatermarkReport {
            partition_id: partition,
            lsn: lsn.0,
        })
        .map_err(|e| e.to_string())?;
        let path = "/internal/archive/watermark";
        let answer = self
            .agent
            .post(format!("{}{path}", self.base))
            .header(INTERNAL_TOKEN_HEADER, &self.token)
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| format!("node {}: {e}", self.base))?;
        let body = read_answer(answer, &self.base, path)?;
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("watermark answer: {e}"))?;
        value["watermark"]
            .as_u64()
            .map(Lsn)
            .ok_or_else(|| "watermark answer without a watermark".to_string())
    }

    /// The node's catalog (its JSON encoding).
    pub fn catalog(&self) -> Result<Vec<u8>, String> {
        self.get("/internal/catalog")
    }

    /// Opens a snapshot stream of `partition`'s store (`ddb::server::read_snapshot_stream`
    /// reads it).
    pub fn snapshot_stream(&self, partition: u64) -> Result<impl std::io::Read + use<>, String> {
        let path = format!("/internal/partitions/{partition}/snapshot");
        let answer = self
            .streaming
            .get(format!("{}{path}", self.base))
            .header(INTERNAL_TOKEN_HEADER, &self.token)
            .call()
            .map_err(|e| format!("node {}: {e}", self.base))?;
        if answer.status().as_u16() != 200 {
            return Err(format!(
                "node {} {path}: HTTP {}",
                self.base,
                answer.status().as_u16()
            ));
        }
        Ok(answer.into_body().into_reader())
    }
}

fn read_answer(
    answer: ureq::http::Response<ureq::Body>,
    base: &str,
    path: &str,
) -> Result<Vec<u8>, String> {
    let status = answer.status().as_u16();
    let body = answer
        .into_body()
        .into_with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("node {base}{path}: {e}"))?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!(
            "node {base}{path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ))
    }
}
