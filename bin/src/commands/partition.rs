//! `ddbctl partition heal`: ask a group's leader to replace one of its members.
//! `ddbctl partition split`: split a hot partition in two.

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
        PartitionCommand::Split {
            table,
            partition,
            at,
        } => {
            let client = connect::client(connection)?;
            let mut body = json!({"TableName": table, "Partition": partition});
            if let Some(at) = at {
                body["Boundary"] = json!(at);
            }
            let answer = client.call("DdbSplitPartition", &body)?;
            match format {
                OutputFormat::Json => out!("{answer:#}"),
                OutputFormat::Table => {
                    out!(
                        "partition {partition} of {table} split at {} in {} ms (writes waited {} ms, for {} log entries behind the fence, after {} catch-up rounds); digests {} = {}",
                        answer["Boundary"].as_str().unwrap_or("?"),
                        answer["TookMs"],
                        answer["WritesWaitedMs"],
                        answer["FenceTailEntries"],
                        answer["CatchUpRounds"],
                        answer["ParentDigest"].as_str().unwrap_or("?"),
                        answer["ChildrenDigestSum"].as_str().unwrap_or("?"),
                    );
                    for child in answer["Children"].as_array().into_iter().flatten() {
                        out!(
                            "  partition {}: {}..{}, {} items from the snapshot, {} changes from the log",
                            child["Partition"],
                            child["HashStart"].as_str().unwrap_or("?"),
                            child["HashEnd"].as_str().unwrap_or("?"),
                            child["Items"],
                            child["LogChanges"],
                        );
                    }
                }
            }
            Ok(Outcome::Clean)
        }
    }
}
