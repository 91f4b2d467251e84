//! Access keys: configured ones, or a pair generated on first start and kept in the data
//! directory so that restarts keep working for the same clients.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use ddb::config::{AccessKey, NodeConfig};
use serde::{Deserialize, Serialize};

const FILE: &str = "credentials.toml";

#[derive(Serialize, Deserialize)]
struct Stored {
    credentials: Vec<AccessKey>,
}

/// The keys the node accepts: the configured ones, else the stored generated pair, else a new
/// generated pair (stored with mode 0600).
pub fn resolve(config: &NodeConfig) -> anyhow::Result<Vec<AccessKey>> {
    if !config.credentials.is_empty() {
        return Ok(config.credentials.clone());
    }
    let path = config.data_dir.join(FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let stored: Stored =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if !stored.credentials.is_empty() {
            return Ok(stored.credentials);
        }
    }
    let key = AccessKey::generate().context("generating an access key")?;
    write_private(
        &path,
        &toml::to_string(&Stored {
            credentials: vec![key.clone()],
        })?,
    )?;
    tracing::info!(file = %path.display(), access_key_id = %key.access_key_id, "generated an access key");
    Ok(vec![key])
}

/// Prints how to point a client at the node: the endpoint and, for a generated key, the key.
pub fn print_for_clients(keys: &[AccessKey], config: &NodeConfig, address: SocketAddr) {
    if !config.credentials.is_empty() {
        crate::say!("access keys: {} configured", keys.len());
        return;
    }
    if let Some(key) = keys.first() {
        crate::say!(
            "credentials (stored in {}):",
            config.data_dir.join(FILE).display()
        );
        crate::say!("  export AWS_ACCESS_KEY_ID={}", key.access_key_id);
        crate::say!("  export AWS_SECRET_ACCESS_KEY={}", key.secret_access_key);
        crate::say!("  export AWS_DEFAULT_REGION={}", config.region);
        crate::say!("  aws dynamodb list-tables --endpoint-url http://{address}");
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
