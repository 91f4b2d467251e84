//! What each `ddbctl` command does.

mod archive;
#[cfg(feature = "bucket-admin")]
pub(crate) mod archive_bucket;
mod archive_restore;
mod canary;
mod cluster;
pub(crate) mod cluster_status;
mod completions;
pub mod connect;
mod item;
mod item_json;
mod items_view;
mod local;
pub(crate) mod local_fleet;
pub(crate) mod local_layout;
mod partition;
mod replica;
mod scrub;
mod status_view;
mod table;
mod table_capacity;
mod wal;

use std::process::ExitCode;

use crate::cli::{Cli, Command, DrillCommand, LocalCommand, ReplicaCommand, WalCommand};

/// How a command that ran to the end came out.
pub enum Outcome {
    /// Nothing wrong found.
    Clean,
    /// A check found a problem; the report has been printed.
    ProblemFound,
}

impl Outcome {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::ProblemFound => ExitCode::from(1),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let format = cli.global.output;
    match cli.command {
        Command::Wal(WalCommand::Inspect { dir }) => wal::inspect_dir(&dir, format),
        Command::Replica(ReplicaCommand::Verify { dir }) => replica::verify(&dir, format),
        Command::Table(command) => {
            let client = connect::client(&cli.global.connection)?;
            table::run(&client, &cli.global.connection, command, format)
        }
        Command::Item(command) => {
            item::run(&connect::client(&cli.global.connection)?, command, format)
        }
        Command::Bench(args) => crate::bench::run(&cli.global.connection, &args, format),
        Command::Local(LocalCommand::Up(args)) => local::up(&args),
        Command::Cluster(command) => cluster::run(&cli.global.connection, command, format),
        Command::Partition(command) => partition::run(&cli.global.connection, command, format),
        Command::Archive(command) => archive::run(command, &cli.global.connection, format),
        Command::Scrub(command) => scrub::run(command, format),
        Command::Canary(command) => canary::run_canary(command, format),
        Command::Alarms(command) => canary::run_alarms(command, format),
        Command::Drill(DrillCommand::PowerOff(args)) => crate::drill::power_off(&args, format),
        Command::Completions(args) => completions::print_completions(args.shell),
        Command::Man(args) => completions::write_man_pages(&args.dir, format),
    }
}
