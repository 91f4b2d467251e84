//! Node configuration: a TOML file, then `DDB_*` environment variables over it.
//!
//! Every key, its default and its environment variable are listed in [`NodeConfig::HELP`],
//! which `ddbd --help` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sigv4::Credential;

/// One access key accepted by the node.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// The access key id clients sign with.
    pub access_key_id: String,
    /// The secret; never logged.
    pub secret_access_key: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Letters and digits: the alphabet of generated secrets.
pub const SECRET_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `count` characters drawn from `alphabet` (at most 256 letters) with the operating system's
/// random generator.
pub fn random_text(count: usize, alphabet: &[u8]) -> std::io::Result<String> {
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(format!("random bytes: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect())
}

impl AccessKey {
    /// A new random key pair: `DDB` and 17 base32 letters, and a 40-character secret.
    pub fn generate() -> std::io::Result<AccessKey> {
        Ok(AccessKey {
            access_key_id: format!(
                "DDB{}",
                random_text(17, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?
            ),
            secret_access_key: random_text(40, SECRET_ALPHABET)?,
        })
    }

    /// The SigV4 credential for this key.
    #[must_use]
    pub fn credential(&self) -> Credential {
        Credential::new(&self.access_key_id, &self.secret_access_key)
    }
}

/// One node of a cluster, as every member's configuration lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterNode {
    /// The node's id (its `node_id`).
    pub id: u32,
    /// Its availability zone.
    pub az: String,
    /// Its DynamoDB API address (where clients and forwarded requests go).
    pub api: SocketAddr,
    /// Its peer address (replication transport).
    pub peer: SocketAddr,
}

/// How a node joins a cluster. Absent: the node runs alone, each partition a group of one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Address the replication transport listens on.
    pub peer_listen: SocketAddr,
    /// Shared secret that authenticates nodes to each other (at least 16 bytes).
    pub secret: String,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<ClusterNode>,
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("peer_listen", &self.peer_listen)
            .field("secret", &"<redacted>")
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl ClusterConfig {
    /// Checks the cluster section for node `node_id`: the secret is long enough, node ids are
    /// unique and this node is listed. Returns this node's entry.
    pub fn validate(&self, node_id: u32) -> Result<&ClusterNode, String> {
        if self.secret.len() < 16 {
            return Err("cluster.secret must be at least 16 bytes".to_string());
        }
        let mut ids: Vec<u32> = self.nodes.iter().map(|node| node.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("cluster.nodes lists a node id twice".to_string());
        }
        self.nodes
            .iter()
            .find(|node| node.id == node_id)
            .ok_or_else(|| format!("cluster.nodes does not list this node (node_id = {node_id})"))
    }
}

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id, unique in the cluster.
    pub node_id: u32,
    /// The availability zone the node is in.
    pub az: String,
    /// Address the DynamoDB API, `/healthz` and `/metrics` listen on.
    pub listen: SocketAddr,
    /// Where WALs, replica stores and the catalog live.
    pub data_dir: PathBuf,
    /// Region clients sign for, and that ARNs name.
    pub region: String,
    /// Access keys accepted for SigV4. Empty: a key pair is generated on first start and kept
    /// in `<data_dir>/credentials.toml`.
    pub credentials: Vec<AccessKey>,
    /// Accept unsigned requests. For local experiments only.
    pub allow_unauthenticated: bool,
    /// Partitions an on-demand table starts with.
    pub on_demand_partitions: u64,
    /// Cluster membership; absent for a single node.
    pub cluster: Option<ClusterConfig>,
    /// In a cluster, a group whose replica is silent this long is healed by its leader (a log
    /// replica on a spare node, then the silent replica removed); 0 never heals.
    pub heal_after_ms: u64,
    /// Archiving of the node's log by the `ddb-archiver` beside it.
    pub archive: NodeArchiveConfig,
    /// Capacity admission (`docs/admission.md`).
    pub admission: crate::admission::AdmissionLimits,
}

/// The `[archive]` section of a node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeArchiveConfig {
    /// An archiver runs beside the node: bound the unarchived log. Off, the node neither
    /// expects watermarks nor throttles.
    pub enabled: bool,
    /// Per partition, log bytes above the archive watermark past which writes get
    /// `ThrottlingException` (the node never deletes unarchived log to make room).
    pub max_unarchived_bytes: u64,
}

impl Default for NodeArchiveConfig {
    fn default() -> Self {
        NodeArchiveConfig {
            enabled: false,
            max_unarchived_bytes: 1 << 30,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 1,
            az: "a".to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            data_dir: PathBuf::from("ddb-data"),
            region: "us-east-1".to_string(),
            credentials: Vec::new(),
            allow_unauthenticated: false,
            on_demand_partitions: 4,
            cluster: None,
            heal_after_ms: 5_000,
            archive: NodeArchiveConfig::default(),
            admission: crate::admission::AdmissionLimits::default(),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

impl NodeConfig {
    /// Documentation of every key, for `ddbd --help`.
    pub const HELP: &'static str = "\
Configuration keys (TOML file given with --config; each can be overridden by the environment
variable in brackets):
  node_id = 1                    this node's id, unique in the cluster [DDB_NODE_ID]
  az = \"a\"                       availability zone of the node [DDB_AZ]
  listen = \"127.0.0.1:8000\"      address of the DynamoDB API, /healthz and /metrics [DDB_LISTEN]
  data_dir = \"ddb-data\"          WALs, replica stores, catalog [DDB_DATA_DIR]
  region = \"us-east-1\"           region clients sign requests for [DDB_REGION]
  allow_unauthenticated = false  accept unsigned requests; local experiments only [DDB_ALLOW_UNAUTHENTICATED]
  on_demand_partitions = 4       partitions an on-demand table starts with [DDB_ON_DEMAND_PARTITIONS]
  [[credentials]]                access keys accepted for SigV4 (repeatable)
  access_key_id = \"...\"          [DDB_ACCESS_KEY_ID, with DDB_SECRET_ACCESS_KEY: replaces the list]
  secret_access_key = \"...\"
  heal_after_ms = 5000           heal a group whose replica is silent this long; 0: never [DDB_HEAL_AFTER_MS]
  [archive]                      the ddb-archiver beside this node
  enabled = false                bound the unarchived log (set where an archiver runs) [DDB_ARCHIVE_ENABLED]
  max_unarchived_bytes = 1073741824  per partition; past it writes get ThrottlingException [DDB_MAX_UNARCHIVED_BYTES]
  [admission]                    capacity admission (docs/admission.md)
  mode = \"gac\"                   gac: global admission control; static: each partition its equal
                                 share, no table-level control; off: never throttle [DDB_ADMISSION_MODE]
  partition_read_units = 3000    most RCU/s a partition serves; also sizes new tables' partitions
  partition_write_units = 1000   most WCU/s a partition takes; also sizes new tables' partitions
  node_read_units = 30000        RCU/s the node serves before partitions may no longer burst
  node_write_units = 10000       WCU/s the node takes before partitions may no longer burst
  burst_seconds = 300            unused capacity kept as burst credit for this long
  gac_interval_ms = 2000         how often routers ask GAC for their rates
  on_demand_read_units = 12000   an on-demand table's starting rate (then twice its previous peak)
  on_demand_write_units = 4000
  split_hot_after_ms = 60000     split a partition at >= 80% of a ceiling this long; 0: never
                                 (the cut follows its key heat)
  control_plane_per_second = 100 Create/Update/Delete/DescribeTable, ListTables per second (burst
                                 2x); past it ThrottlingException; 0: unlimited
  [cluster]                      omit to run a single node
  peer_listen = \"127.0.0.1:9000\" replication transport address [DDB_PEER_LISTEN]
  secret = \"...\"                 shared by all nodes, at least 16 bytes [DDB_CLUSTER_SECRET]
  [[cluster.nodes]]              every node of the cluster, this one included (repeatable)
  id = 1
  az = \"a\"
  api = \"127.0.0.1:8000\"
  peer = \"127.0.0.1:9000\"
With no credentials configured, a key pair is generated on first start, stored in
<data_dir>/credentials.toml (mode 0600) and printed.";

    /// Loads `path` (if given) over the defaults, then applies environment overrides read
    /// through `env` (a parameter so tests control it).
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => NodeConfig::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                value,
                message: e.to_string(),
            })
        }
        if let Some(v) = env("DDB_NODE_ID") {
            self.node_id = parsed("DDB_NODE_ID", v)?;
        }
        if let Some(v) = env("DDB_AZ") {
            self.az = v;
        }
        if let Some(v) = env("DDB_LISTEN") {
            self.listen = parsed("DDB_LISTEN", v)?;
        }
        if let Some(v) = env("DDB_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DDB_REGION") {
            self.region = v;
        }
        if let Some(v) = env("DDB_ALLOW_UNAUTHENTICATED") {
            self.allow_unauthenticated = parsed("DDB_ALLOW_UNAUTHENTICATED", v)?;
        }
        if let Some(v) = env("DDB_ON_DEMAND_PARTITIONS") {
            self.on_demand_partitions = parsed("DDB_ON_DEMAND_PARTITIONS", v)?;
        }
        if let Some(v) = env("DDB_HEAL_AFTER_MS") {
            self.heal_after_ms = parsed("DDB_HEAL_AFTER_MS", v)?;
        }
        if let Some(v) = env("DDB_ARCHIVE_ENABLED") {
            self.archive.enabled = parsed("DDB_ARCHIVE_ENABLED", v)?;
        }
        if let Some(v) = env("DDB_ADMISSION_MODE") {
            self.admission.mode = parsed("DDB_ADMISSION_MODE", v)?;
        }
        if let Some(v) = env("DDB_MAX_UNARCHIVED_BYTES") {
            self.archive.max_unarchived_bytes = parsed("DDB_MAX_UNARCHIVED_BYTES", v)?;
        }
        if let Some(cluster) = self.cluster.as_mut() {
            if let Some(v) = env("DDB_PEER_LISTEN") {
                cluster.peer_listen = parsed("DDB_PEER_LISTEN", v)?;
            }
            if let Some(v) = env("DDB_CLUSTER_SECRET") {
                cluster.secret = v;
            }
        }
        match (env("DDB_ACCESS_KEY_ID"), env("DDB_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => {
                self.credentials = vec![AccessKey {
                    access_key_id: id,
                    secret_access_key: secret,
                }];
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Env {
                    name: "DDB_ACCESS_KEY_ID",
                    value: String::new(),
                    message: "DDB_ACCESS_KEY_ID and DDB_SECRET_ACCESS_KEY go together".into(),
                });
            }
            (None, None) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 7\nlisten = \"127.0.0.1:9001\"\n[[credentials]]\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\n",
        )
        .unwrap();
        let config = NodeConfig::load(Some(&path), |name| {
            (name == "DDB_LISTEN").then(|| "127.0.0.1:9002".to_string())
        })
        .unwrap();
        assert_eq!(config.node_id, 7);
        assert_eq!(config.listen.port(), 9002);
        assert_eq!(config.credentials[0].access_key_id, "AK");
        assert!(
            !format!("{config:?}").contains("SK\""),
            "secrets never in Debug"
        );
    }

    #[test]
    fn a_cluster_section_lists_every_node() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "node_id = 2\n[cluster]\npeer_listen = \"127.0.0.1:9001\"\nsecret = \"0123456789abcdef\"\n\
             [[cluster.nodes]]\nid = 1\naz = \"a\"\napi = \"127.0.0.1:8000\"\npeer = \"127.0.0.1:9000\"\n\
             [[cluster.nodes]]\nid = 2\naz = \"b\"\napi = \"127.0.0.1:8001\"\npeer = \"127.0.0.1:9001\"\n",
        )
        .unwrap();
        let config = NodeConfig::load(Some(&path), |name| {
            (name == "DDB_CLUSTER_SECRET").then(|| "a-longer-secret-from-env".to_string())
        })
        .unwrap();
        let cluster = config.cluster.as_ref().unwrap();
        assert_eq!(cluster.secret, "a-longer-secret-from-env");
        assert_eq!(cluster.validate(2).unwrap().az, "b");
        assert!(cluster.validate(3).is_err(), "this node must be listed");
        assert!(!format!("{config:?}").contains("a-longer-secret"));
        let short = ClusterConfig {
            secret: "short".into(),
            ..cluster.clone()
        };
        assert!(short.validate(2).is_err());
    }

    /// `deploy/config/ddbd.toml` loads with the real loader, describes host 1 of a three-AZ
    /// cluster as ddbd checks it at start, and its placeholder cluster secret cannot be used by
    /// mistake.
    #[test]
    fn the_example_deploy_config_is_host_one_of_three_azs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/ddbd.toml");
        let placeholder = NodeConfig::load(Some(&path), |_| None).unwrap();
        assert!(
            placeholder.cluster.as_ref().unwrap().validate(1).is_err(),
            "ddbd must refuse the example's placeholder secret"
        );

        let config = NodeConfig::load(Some(&path), |name| {
            (name == "DDB_CLUSTER_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string())
        })
        .unwrap();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/ddb"));
        assert!(config.archive.enabled, "an archiver runs beside every node");
        assert!(!config.allow_unauthenticated);
        assert_eq!(
            config.credentials.len(),
            2,
            "the application's and the canary's keys"
        );
        let cluster = config.cluster.as_ref().unwrap();
        let this = cluster.validate(config.node_id).unwrap();
        assert_eq!(
            this.az, config.az,
            "ddbd refuses an az the node list contradicts"
        );
        assert_eq!(this.peer, cluster.peer_listen);
        let mut azs: Vec<&str> = cluster.nodes.iter().map(|node| node.az.as_str()).collect();
        azs.sort_unstable();
        assert_eq!(azs, ["a", "b", "c"], "three nodes, one per AZ");
        assert_eq!(config.listen.port(), this.api.port());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "nodeid = 7\n").unwrap();
        assert!(matches!(
            NodeConfig::load(Some(&path), |_| None),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            NodeConfig::load(None, |n| (n == "DDB_NODE_ID").then(|| "x".into())),
            Err(ConfigError::Env { .. })
        ));
    }
}
