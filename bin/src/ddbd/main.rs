//! `ddbd`: a ddb storage node. Parses its configuration, opens the node's data, serves the
//! DynamoDB API until SIGINT or SIGTERM.

mod credentials;

/// Prints a line on standard output, ignoring errors: the node keeps serving when whoever
/// started it stops reading (a closed pipe must not take the node down).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ddb::cluster::ClusterNetwork;
use ddb::config::NodeConfig;
use ddb::node::{Node, NodeOptions, PlacementNode};
use ddb::server::{ServerState, serve};
use ddb::sigv4::Verifier;
use ddb::transport::{Transport, TransportConfig};

/// ddbd: a ddb storage node that DynamoDB clients (boto3, aws-cli, the AWS SDKs) talk to.
///
/// Precedence: command-line flags over DDB_* environment variables over the --config file
/// over built-in defaults. With no configuration at all it serves on 127.0.0.1:8000 with data
/// under ./ddb-data and a generated access key that it prints.
#[derive(Debug, Parser)]
#[command(name = "ddbd", version, after_help = NodeConfig::HELP)]
struct Args {
    /// TOML configuration file.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address (overrides `listen`), e.g. 127.0.0.1:8000.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Node id (overrides `node_id`).
    #[arg(long)]
    node_id: Option<u32>,
    /// Accept unsigned requests. For local experiments only: anyone who can reach the port can
    /// read and write every table.
    #[arg(long)]
    allow_unauthenticated: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ddb::service::init_logging("info,lsm_tree=warn,fjall=warn");

    let mut config = NodeConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())
        .context("loading configuration")?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    config.allow_unauthenticated |= args.allow_unauthenticated;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let keys = credentials::resolve(&config).context("setting up access keys")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (node, peers) = open_node(&config, &runtime)?;
    let verifier = if config.allow_unauthenticated {
        tracing::warn!("authentication is OFF: unsigned requests are accepted");
        None
    } else {
        Some(Verifier::new(
            keys.iter().map(|k| k.credential()).collect(),
            config.region.clone(),
            "dynamodb",
            Verifier::DEFAULT_MAX_SKEW,
        ))
    };
    let state = ServerState::with_cluster_secret(
        Arc::clone(&node),
        verifier,
        config
            .cluster
            .as_ref()
            .map(|cluster| cluster.secret.as_str()),
    );
    node.start_ticker()
        .context("starting the replication ticker")?;
    if let Some(inbox) = peers {
        ddb::cluster::serve_peers(Arc::clone(&node), inbox, runtime.handle().clone())
            .context("starting the peer dispatcher")?;
    }

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        say!(
            "ddbd node {} (az {}) serving DynamoDB on http://{address}",
            config.node_id,
            config.az
        );
        credentials::print_for_clients(&keys, &config, address);
        ddb::service::notify_systemd("READY=1");
        // The runtime that serves requests also pings systemd's watchdog (WatchdogSec in
        // deploy/systemd/ddbd.service): a wedged runtime gets the node restarted.
        ddb::service::spawn_watchdog();
        serve(listener, state, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok::<(), anyhow::Error>(())
    })
}

/// Opens the node's data: alone, or (with a `[cluster]` section) as one node of a cluster,
/// its groups replicated through the transport. Returns the peer inbox to serve in a cluster.
fn open_node(
    config: &NodeConfig,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<(Arc<Node>, Option<ddb::transport::Inbox>)> {
    let mut options = NodeOptions {
        node_id: config.node_id,
        region: config.region.clone(),
        on_demand_partitions: config.on_demand_partitions,
        archive_bound: config
            .archive
            .enabled
            .then_some(config.archive.max_unarchived_bytes),
        // Only from the environment, never a configuration file: it exists for tests.
        fault_injection: std::env::var("DDB_FAULT_INJECTION").is_ok_and(|v| v == "1"),
        admission: config.admission.clone(),
        ..NodeOptions::default()
    };
    let Some(cluster) = &config.cluster else {
        let node = Node::open(&config.data_dir, options)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening node data in {}", config.data_dir.display()))?;
        return Ok((Arc::new(node), None));
    };
    let this = cluster
        .validate(config.node_id)
        .map_err(anyhow::Error::msg)
        .context("checking the [cluster] section")?;
    if this.az != config.az {
        anyhow::bail!(
            "az = {:?} but cluster.nodes lists this node in az {:?}",
            config.az,
            this.az
        );
    }
    options.heal_after =
        (config.heal_after_ms > 0).then(|| std::time::Duration::from_millis(config.heal_after_ms));
    options.cluster = cluster
        .nodes
        .iter()
        .map(|node| PlacementNode {
            id: node.id,
            az: node.az.clone(),
            api: Some(node.api),
        })
        .collect();
    let mut transport_config = TransportConfig::new(
        u64::from(config.node_id),
        cluster.peer_listen,
        cluster.secret.as_bytes().to_vec(),
    );
    // A restarted peer must hear its leader within an election timeout, or it campaigns.
    transport_config.reconnect_backoff_max = std::time::Duration::from_millis(500);
    transport_config.peers = cluster
        .nodes
        .iter()
        .filter(|node| node.id != config.node_id)
        .map(|node| (u64::from(node.id), node.peer))
        .collect();
    let (transport, inbox) = {
        let _context = runtime.enter();
        Transport::start(transport_config)
            .with_context(|| format!("starting the peer transport on {}", cluster.peer_listen))?
    };
    let network = Arc::new(ClusterNetwork::new(transport, runtime.handle().clone()));
    let node = Node::open_with_network(&config.data_dir, options, network)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("opening node data in {}", config.data_dir.display()))?;
    say!(
        "ddbd node {} joins a cluster of {} nodes (peers on {})",
        config.node_id,
        cluster.nodes.len(),
        cluster.peer_listen
    );
    Ok((Arc::new(node), Some(inbox)))
}

async fn shutdown_signal() {
    ddb::service::shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
}
