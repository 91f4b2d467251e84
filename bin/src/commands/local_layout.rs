//! Where `ddbctl local up` puts a cluster: ports, files and the secrets shared by every node
//! (documented in docs/local.md).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ddb::config::{
    AccessKey, ClusterConfig, ClusterNode, NodeArchiveConfig, NodeConfig, SECRET_ALPHABET,
    random_text,
};
use serde::{Deserialize, Serialize};

/// Peer (replication) ports sit this far above API ports.
pub const PEER_PORT_OFFSET: u16 = 100;
/// Archiver `/metrics` ports sit this far above API ports.
pub const ARCHIVER_PORT_OFFSET: u16 = 200;
/// The scrubber (one per cluster) listens this far above the first API port.
pub const SCRUBBER_PORT_OFFSET: u16 = 300;
/// The canaries (one per AZ) listen this far above the first API port, in AZ order.
pub const CANARY_PORT_OFFSET: u16 = 400;
/// The region every local node serves and clients sign for.
pub const REGION: &str = "us-east-1";
const CREDENTIALS_FILE: &str = "credentials.toml";
const SECRET_FILE: &str = "cluster.secret";
const CONFIG_FILE: &str = "ddbd.toml";
const LOG_FILE: &str = "ddbd.log";
const ARCHIVER_CONFIG_FILE: &str = "archiver.toml";
const ARCHIVER_LOG_FILE: &str = "archiver.log";
const SCRUBBER_CONFIG_FILE: &str = "scrubber.toml";
const SCRUBBER_LOG_FILE: &str = "scrubber.log";

/// One node of a local cluster: its id, AZ and loopback addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    pub id: u32,
    pub az: String,
    pub api: SocketAddr,
    pub peer: SocketAddr,
    /// Where the archiver beside the node serves `/metrics` and `/healthz`.
    pub archiver: SocketAddr,
}

/// A local cluster's layout: `nodes` under `dir`, node i in AZ a, b, c…, API on
/// `base_port + i - 1`, peer transport on `base_port + 100 + i - 1`.
#[derive(Clone, Debug)]
pub struct LocalCluster {
    pub dir: PathBuf,
    pub nodes: Vec<LocalNode>,
    /// Every node's `heal_after_ms`.
    pub heal_after_ms: u64,
    /// Every node's `[admission]` section.
    pub admission: ddb::admission::AdmissionLimits,
    /// The archive every node's archiver writes to; `None` runs no archivers (nor scrubber).
    pub archive: Option<String>,
    /// Where the cluster's scrubber serves.
    pub scrubber: SocketAddr,
    /// One canary per AZ of the nodes (none with `--no-canary`).
    pub canaries: Vec<LocalCanary>,
    /// The canaries' `[cfa] window_scale`.
    pub alarm_window_scale: f64,
}

/// The `[admission]` section `settings` (`KEY=VALUE`, as `local up --admission` takes them)
/// make of the defaults; a bad key or value is an error naming it.
pub fn admission_limits(settings: &[String]) -> anyhow::Result<ddb::admission::AdmissionLimits> {
    let mut table = toml::Table::try_from(ddb::admission::AdmissionLimits::default())
        .context("serialising the admission defaults")?;
    for setting in settings {
        let (key, value) = setting
            .split_once('=')
            .with_context(|| format!("--admission {setting:?}: expected KEY=VALUE"))?;
        let value = match value.parse::<i64>() {
            Ok(number) => toml::Value::Integer(number),
            Err(_) => toml::Value::String(value.to_string()),
        };
        table.insert(key.trim().to_string(), value);
    }
    table
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("--admission: {}", e.message()))
}

/// A canary of a local cluster: its AZ and where it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCanary {
    pub az: String,
    pub listen: SocketAddr,
}

/// A canary's configuration file (the keys `local up` sets; the alarm rules keep their
/// defaults).
#[derive(Serialize)]
struct CanaryFile {
    az: String,
    endpoints: Vec<String>,
    nodes: Vec<String>,
    archivers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrubber: Option<String>,
    access_key_id: String,
    secret_access_key: String,
    region: String,
    table_capacity_units: u64,
    listen: SocketAddr,
    data_dir: PathBuf,
    cfa: CanaryAlarms,
}

/// The `[cfa]` keys `local up` sets in a canary's configuration.
#[derive(Serialize)]
struct CanaryAlarms {
    window_scale: f64,
}

/// The scrubber's configuration file (the keys `local up` sets).
#[derive(Serialize)]
struct ScrubberFile {
    nodes: Vec<String>,
    cluster_secret_file: PathBuf,
    archive: String,
    data_dir: PathBuf,
    listen: SocketAddr,
    interval_ms: u64,
    deep_every_ms: u64,
}

/// An archiver's configuration file, as `ddb-archiver` reads it (the keys `local up` sets).
#[derive(Serialize)]
struct ArchiverFile {
    node_url: String,
    node_data_dir: PathBuf,
    archive: String,
    listen: SocketAddr,
}

/// What every node of a local cluster shares.
pub struct SharedSecrets {
    /// The access key clients sign with; every node accepts it.
    pub access_key: AccessKey,
    /// The secret nodes authenticate each other with.
    pub cluster_secret: String,
}

/// `<dir>/credentials.toml`: the same shape as ddbd's own generated-key file.
#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    credentials: Vec<AccessKey>,
}

impl LocalCluster {
    /// The layout for `count` nodes (1 to 26) under `dir` from `base_port`; fails if a port
    /// would pass 65535.
    pub fn plan(dir: &Path, count: u32, base_port: u16) -> anyhow::Result<Self> {
        if !(1..=26).contains(&count) {
            bail!("--nodes must be between 1 and 26, not {count}");
        }
        let mut nodes = Vec::new();
        for index in 0..count {
            let port = |offset: u16| {
                u16::try_from(index)
                    .ok()
                    .and_then(|i| base_port.checked_add(offset)?.checked_add(i))
                    .with_context(|| {
                        format!(
                            "--base-port {base_port} is too high for {count} nodes: ports run to \
                             BASE+{ARCHIVER_PORT_OFFSET}+{}",
                            count - 1
                        )
                    })
            };
            // AZs a, b, c in turn: a fourth node is a spare in AZ a, where healing prefers to
            // put a replacement for a replica lost in that AZ.
            let az = char::from(b'a' + u8::try_from(index % 3).unwrap_or(0));
            nodes.push(LocalNode {
                id: index + 1,
                az: az.to_string(),
                api: SocketAddr::from((Ipv4Addr::LOCALHOST, port(0)?)),
                peer: SocketAddr::from((Ipv4Addr::LOCALHOST, port(PEER_PORT_OFFSET)?)),
                archiver: SocketAddr::from((Ipv4Addr::LOCALHOST, port(ARCHIVER_PORT_OFFSET)?)),
            });
        }
        let scrubber = base_port
            .checked_add(SCRUBBER_PORT_OFFSET)
            .with_context(|| format!("--base-port {base_port} is too high: the scrubber listens on BASE+{SCRUBBER_PORT_OFFSET}"))?;
        let mut azs: Vec<String> = nodes.iter().map(|node| node.az.clone()).collect();
        azs.sort();
        azs.dedup();
        let mut canaries = Vec::new();
        for (index, az) in (0u16..).zip(azs) {
            let port = base_port
                .checked_add(CANARY_PORT_OFFSET + index)
                .with_context(|| format!("--base-port {base_port} is too high: canaries listen from BASE+{CANARY_PORT_OFFSET}"))?;
            canaries.push(LocalCanary {
                az,
                listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            });
        }
        Ok(LocalCluster {
            dir: dir.to_path_buf(),
            nodes,
            heal_after_ms: NodeConfig::default().heal_after_ms,
            admission: ddb::admission::AdmissionLimits::default(),
            archive: None,
            scrubber: SocketAddr::from((Ipv4Addr::LOCALHOST, scrubber)),
            canaries,
            alarm_window_scale: 1.0,
        })
    }

    /// Fails with a one-line error naming the first port (API or peer) that something else
    /// holds.
    pub fn check_ports_free(&self) -> anyhow::Result<()> {
        for node in &self.nodes {
            let mut ports = vec![("API", node.api), ("peer", node.peer)];
            if self.archive.is_some() {
                ports.push(("archiver", node.archiver));
            }
            if self.archive.is_some() && node.id == 1 {
                ports.push(("scrubber", self.scrubber));
            }
            if node.id == 1 {
                ports.extend(self.canaries.iter().map(|canary| ("canary", canary.listen)));
            }
            for (what, address) in ports {
                if let Err(e) = TcpListener::bind(address) {
                    bail!(
                        "port {} (node {} {what}) is not free: {e}; stop what uses it or pick \
                         another --base-port",
                        address.port(),
                        node.id
                    );
                }
            }
        }
        Ok(())
    }

    /// `<dir>/node<i>`.
    pub fn node_dir(&self, node: &LocalNode) -> PathBuf {
        self.dir.join(format!("node{}", node.id))
    }

    /// `<dir>/node<i>/ddbd.toml`.
    pub fn config_path(&self, node: &LocalNode) -> PathBuf {
        self.node_dir(node).join(CONFIG_FILE)
    }

    /// `<dir>/node<i>/ddbd.log`.
    pub fn log_path(&self, node: &LocalNode) -> PathBuf {
        self.node_dir(node).join(LOG_FILE)
    }

    /// `<dir>/node<i>/archiver.toml`.
    pub fn archiver_config_path(&self, node: &LocalNode) -> PathBuf {
        self.node_dir(node).join(ARCHIVER_CONFIG_FILE)
    }

    /// `<dir>/node<i>/archiver.log`.
    pub fn archiver_log_path(&self, node: &LocalNode) -> PathBuf {
        self.node_dir(node).join(ARCHIVER_LOG_FILE)
    }

    /// `<dir>/scrubber.toml`.
    pub fn scrubber_config_path(&self) -> PathBuf {
        self.dir.join(SCRUBBER_CONFIG_FILE)
    }

    /// `<dir>/scrubber.log`.
    pub fn scrubber_log_path(&self) -> PathBuf {
        self.dir.join(SCRUBBER_LOG_FILE)
    }

    /// `<dir>/canary-<az>.toml`.
    pub fn canary_config_path(&self, canary: &LocalCanary) -> PathBuf {
        self.dir.join(format!("canary-{}.toml", canary.az))
    }

    /// `<dir>/canary-<az>.log`.
    pub fn canary_log_path(&self, canary: &LocalCanary) -> PathBuf {
        self.dir.join(format!("canary-{}.log", canary.az))
    }

    /// `<dir>/credentials.toml`.
    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// Node `node`'s configuration: its own id, AZ, addresses and data directory, the shared
    /// key and a `[cluster]` section listing every node.
    pub fn node_config(&self, node: &LocalNode, secrets: &SharedSecrets) -> NodeConfig {
        NodeConfig {
            node_id: node.id,
            az: node.az.clone(),
            listen: node.api,
            data_dir: self.node_dir(node).join("data"),
            region: REGION.to_string(),
            credentials: vec![secrets.access_key.clone()],
            heal_after_ms: self.heal_after_ms,
            admission: self.admission.clone(),
            archive: NodeArchiveConfig {
                enabled: self.archive.is_some(),
                ..NodeArchiveConfig::default()
            },
            cluster: Some(ClusterConfig {
                peer_listen: node.peer,
                secret: secrets.cluster_secret.clone(),
                nodes: self
                    .nodes
                    .iter()
                    .map(|n| ClusterNode {
                        id: n.id,
                        az: n.az.clone(),
                        api: n.api,
                        peer: n.peer,
                    })
                    .collect(),
            }),
            ..NodeConfig::default()
        }
    }

    /// Creates the directories, loads the shared key and secret (generating them on first
    /// run) and writes every node's `ddbd.toml` (and `archiver.toml` when archiving). Secrets
    /// are written with mode 0600.
    pub fn prepare(&self) -> anyhow::Result<SharedSecrets> {
        for node in &self.nodes {
            let dir = self.node_dir(node);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let credentials = read_or_create_private(&self.credentials_path(), || {
            Ok(toml::to_string(&CredentialsFile {
                credentials: vec![AccessKey::generate().context("generating an access key")?],
            })?)
        })?;
        let access_key = toml::from_str::<CredentialsFile>(&credentials)
            .with_context(|| format!("parsing {}", self.credentials_path().display()))?
            .credentials
            .into_iter()
            .next()
            .with_context(|| format!("{} lists no key", self.credentials_path().display()))?;
        let secret_path = self.dir.join(SECRET_FILE);
        let cluster_secret = read_or_create_private(&secret_path, || {
            random_text(32, SECRET_ALPHABET).context("generating the cluster secret")
        })?
        .trim()
        .to_string();
        let secrets = SharedSecrets {
            access_key,
            cluster_secret,
        };
        for node in &self.nodes {
            let config = self.node_config(node, &secrets);
            let text = format!(
                "# Written by `ddbctl local up` on every start: edit the flags, not this file.\n{}",
                toml::to_string(&config).context("serialising a node configuration")?
            );
            write_private(&self.config_path(node), &text)?;
            if let Some(archive) = &self.archive {
                let archiver = ArchiverFile {
                    node_url: format!("http://{}", node.api),
                    node_data_dir: config.data_dir.clone(),
                    archive: archive.clone(),
                    listen: node.archiver,
                };
                let text = format!(
                    "# Written by `ddbctl local up` on every start: edit the flags, not this file.\n{}",
                    toml::to_string(&archiver).context("serialising an archiver configuration")?
                );
                write_private(&self.archiver_config_path(node), &text)?;
            }
        }
        if let Some(archive) = &self.archive {
            let scrubber = ScrubberFile {
                nodes: self
                    .nodes
                    .iter()
                    .map(|n| format!("http://{}", n.api))
                    .collect(),
                cluster_secret_file: secret_path,
                archive: archive.clone(),
                data_dir: self.dir.join("scrubber"),
                listen: self.scrubber,
                interval_ms: 5_000,
                deep_every_ms: 3_600_000,
            };
            let text = format!(
                "# Written by `ddbctl local up` on every start: edit the flags, not this file.\n{}",
                toml::to_string(&scrubber).context("serialising the scrubber configuration")?
            );
            write_private(&self.scrubber_config_path(), &text)?;
        }
        let apis: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("http://{}", n.api))
            .collect();
        for canary in &self.canaries {
            let file = CanaryFile {
                az: canary.az.clone(),
                endpoints: apis.clone(),
                nodes: apis.clone(),
                archivers: if self.archive.is_some() {
                    self.nodes
                        .iter()
                        .map(|n| format!("http://{}", n.archiver))
                        .collect()
                } else {
                    Vec::new()
                },
                scrubber: self
                    .archive
                    .as_ref()
                    .map(|_| format!("http://{}", self.scrubber)),
                access_key_id: secrets.access_key.access_key_id.clone(),
                secret_access_key: secrets.access_key.secret_access_key.clone(),
                region: REGION.to_string(),
                // One partition per canary table: a laptop runs fewer groups, and the archive
                // gets one stream of small chunks per canary instead of one per partition.
                table_capacity_units: 100,
                listen: canary.listen,
                data_dir: self.dir.join(format!("canary-{}", canary.az)),
                cfa: CanaryAlarms {
                    window_scale: self.alarm_window_scale,
                },
            };
            let text = format!(
                "# Written by `ddbctl local up` on every start: edit the flags, not this file.\n{}",
                toml::to_string(&file).context("serialising a canary configuration")?
            );
            write_private(&self.canary_config_path(canary), &text)?;
        }
        Ok(secrets)
    }
}

/// The contents of `path`, or, if it does not exist, `generate()`'s text written there with
/// mode 0600.
fn read_or_create_private(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = generate()?;
            write_private(path, &text)?;
            Ok(text)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `text` to `path` readable by its owner only (mode 0600, also when the file existed
/// with another mode).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn nodes_get_azs_and_ports_from_the_base() {
        let cluster = LocalCluster::plan(Path::new("/tmp/x"), 3, 8000).unwrap();
        let summary: Vec<(u32, &str, u16, u16, u16)> = cluster
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    n.az.as_str(),
                    n.api.port(),
                    n.peer.port(),
                    n.archiver.port(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (1, "a", 8000, 8100, 8200),
                (2, "b", 8001, 8101, 8201),
                (3, "c", 8002, 8102, 8202)
            ]
        );
        assert!(cluster.nodes.iter().all(|n| n.api.ip().is_loopback()));
        let five = LocalCluster::plan(Path::new("/tmp/x"), 5, 8000).unwrap();
        let azs: Vec<&str> = five.nodes.iter().map(|n| n.az.as_str()).collect();
        assert_eq!(azs, ["a", "b", "c", "a", "b"]);
        let canaries: Vec<(&str, u16)> = cluster
            .canaries
            .iter()
            .map(|c| (c.az.as_str(), c.listen.port()))
            .collect();
        assert_eq!(canaries, [("a", 8400), ("b", 8401), ("c", 8402)]);
        assert_eq!(five.canaries.len(), 3, "one canary per AZ, not per node");
        assert!(
            LocalCluster::plan(Path::new("x"), 3, 65_134).is_err(),
            "the third canary's port would be 65536"
        );
        assert!(LocalCluster::plan(Path::new("x"), 3, 65_133).is_ok());
        assert!(LocalCluster::plan(Path::new("x"), 27, 8000).is_err());
    }

    #[test]
    fn generated_configs_load_in_ddbd_and_list_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::plan(dir.path(), 3, 8000).unwrap();
        let secrets = cluster.prepare().unwrap();
        for node in &cluster.nodes {
            let path = cluster.config_path(node);
            let config = NodeConfig::load(Some(&path), |_| None).unwrap();
            assert_eq!(config, cluster.node_config(node, &secrets));
            assert_eq!(config.az, node.az);
            assert_eq!(config.listen, node.api);
            assert_eq!(config.credentials, vec![secrets.access_key.clone()]);
            let section = config.cluster.as_ref().unwrap();
            assert_eq!(section.validate(node.id).unwrap().peer, node.peer);
            assert_eq!(section.peer_listen, node.peer);
            assert_eq!(section.nodes.len(), 3);
            assert_eq!(mode(&path), 0o600, "the config holds secrets");
        }
        assert_eq!(mode(&cluster.credentials_path()), 0o600);
        assert_eq!(mode(&dir.path().join(SECRET_FILE)), 0o600);
        for canary in &cluster.canaries {
            let path = cluster.canary_config_path(canary);
            let config = ddb_canary::CanaryConfig::load(Some(&path), |_| None).unwrap();
            config.validate().unwrap();
            assert_eq!(config.az, canary.az);
            assert_eq!(config.endpoints.len(), 3);
            assert_eq!(config.listen, canary.listen);
            assert_eq!(config.table, format!("ddb-canary-{}", canary.az));
            assert_eq!(
                mode(&path),
                0o600,
                "the canary's config holds the secret key"
            );
        }
    }

    #[test]
    fn a_second_run_reuses_the_key_and_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = LocalCluster::plan(dir.path(), 3, 8000).unwrap();
        let first = cluster.prepare().unwrap();
        let second = cluster.prepare().unwrap();
        assert_eq!(first.access_key, second.access_key);
        assert_eq!(first.cluster_secret, second.cluster_secret);
        assert!(first.cluster_secret.len() >= 16);
        let other_dir = tempfile::tempdir().unwrap();
        let other = LocalCluster::plan(other_dir.path(), 3, 8000).unwrap();
        assert_ne!(other.prepare().unwrap().access_key, first.access_key);
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
}
