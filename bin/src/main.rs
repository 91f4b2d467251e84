//! `ddbctl`: the operator's command-line interface to ddb.

mod bench;
mod cli;
mod commands;
mod drill;
mod output;

use std::process::ExitCode;

use clap::Parser;
use ddb::client::ClientError;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => match error.downcast_ref::<ClientError>() {
            // The service's own words, one line: `error: Code: message`.
            Some(client_error) => {
                eprintln!("error: {client_error}");
                if client_error.is_condition_failed() {
                    ExitCode::from(1)
                } else {
                    ExitCode::from(2)
                }
            }
            None => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        },
    }
}
