//! `ddbctl completions` and `ddbctl man`: shell completion scripts and man pages generated
//! from the clap definition in `cli`, so neither can drift from what the binary accepts.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use serde::Serialize;

use super::Outcome;
use crate::cli::{Cli, OutputFormat};
use crate::output::print_line;

/// The name the scripts complete and the pages are named after.
const BIN_NAME: &str = "ddbctl";

/// Prints `shell`'s completion script on standard output.
pub fn print_completions(shell: Shell) -> anyhow::Result<Outcome> {
    // Rendered into memory first: clap_complete panics when its writer fails, and stdout
    // fails as soon as the reader goes away (`ddbctl completions bash | head`); print_line
    // turns that into a quiet exit.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    let script = String::from_utf8(script).context("the completion script is not UTF-8")?;
    print_line(script.trim_end_matches('\n'));
    Ok(Outcome::Clean)
}

#[derive(Serialize)]
struct ManReport {
    dir: PathBuf,
    pages: Vec<PathBuf>,
}

/// Writes one man page per visible command and subcommand into `dir` (created if missing) and
/// prints the paths written.
pub fn write_man_pages(dir: &Path, format: OutputFormat) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Built once at the top so every subcommand carries its display name (`ddbctl-scrub-repair`,
    // which names its page) and the global flags; `help` is clap's, not a ddbctl command.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let source = format!(
        "{BIN_NAME} {}",
        root.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
    );
    let mut pages = Vec::new();
    write_page_and_subpages(root, dir, &source, &mut pages)?;
    let report = ManReport {
        dir: dir.to_path_buf(),
        pages,
    };
    match format {
        OutputFormat::Json => print_line(&serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => {
            for page in &report.pages {
                print_line(&page.display().to_string());
            }
        }
    }
    Ok(Outcome::Clean)
}

/// Writes `command`'s page, then its visible subcommands' pages, depth first, appending each
/// path to `pages`.
fn write_page_and_subpages(
    command: clap::Command,
    dir: &Path,
    source: &str,
    pages: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .cloned()
        .collect();
    let man = Man::new(command).source(source);
    let path = man
        .generate_to(dir)
        .with_context(|| format!("writing {}", dir.join(man.get_filename()).display()))?;
    pages.push(path);
    for sub in subcommands {
        write_page_and_subpages(sub, dir, source, pages)?;
    }
    Ok(())
}
