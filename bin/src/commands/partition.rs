//! `ddbctl partition heal`: ask a group's leader to replace one of its members.

use serde_json::json;

use super::Outcome;
use super::connect;
use crate::cli::{ConnectionArgs, OutputFormat, PartitionCommand};
use crate::out;

pub fn run(
    connection: &ConnectionArgs,
    command: PartitionCommand,
    format: OutputFormat,
) -> anyhow::Result<Outcome> {
    match command {
        PartitionCommand::Heal { group, replace } => {
            let client = connect::client(connection)?;
            let answer =
                client.call("DdbHealGroup", &json!({"Group": group, "Replace": replace}))?;
            match format {
                OutputFormat::Json => out!("{answer:#}"),
                OutputFormat::Table => out!(
                    "group {group}: leader {} is replacing node {replace}; follow it with `ddbctl cluster status`",
                    answer["Leader"]
                ),
            }
            Ok(Outcome::Clean)
        }
    }
}
