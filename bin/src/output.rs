//! Printing results as tables for people or JSON for scripts.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::OutputFormat;

/// Writes one line to standard output. When the reader has gone away (`ddbctl … | head`),
/// ddbctl stops quietly with status 0 instead of panicking on the broken pipe.
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{text}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(2);
    }
}

/// `println!` for ddbctl's results: see [`print_line`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::print_line(&format!($($arg)*))
    };
}

/// Prints `value` as pretty JSON, or as the table `to_table` builds from it.
pub fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    to_table: impl FnOnce(&T) -> Vec<Table>,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => print_line(&serde_json::to_string_pretty(value)?),
        OutputFormat::Table => {
            for table in to_table(value) {
                print_line(&table.to_string());
            }
        }
    }
    Ok(())
}

/// A table with ddbctl's look and the given header.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(header.to_vec());
    table
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Reports progress of long work on standard error, drawn only when it is a terminal (so
/// redirected output and scripts see none of it), at most a few times a second however often
/// it is updated.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress line: a message that each update replaces.
    pub fn stderr() -> Self {
        let bar = Self::hidden_unless_terminal(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Progress { bar }
    }

    /// A bar counting `what` up to `total`, with the time left.
    pub fn bar(total: u64, what: &str) -> Self {
        let bar = Self::hidden_unless_terminal(ProgressBar::new(total));
        let template =
            format!("{{msg}} [{{bar:30}}] {{human_pos}}/{{human_len}} {what} ({{eta}} left)");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Progress { bar }
    }

    fn hidden_unless_terminal(bar: ProgressBar) -> ProgressBar {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar
        } else {
            ProgressBar::hidden()
        }
    }

    /// Replaces the message (the whole line of [`Progress::stderr`]).
    pub fn update(&self, line: &str) {
        self.bar.set_message(line.to_owned());
    }

    /// Moves a bar to `position` of `total`.
    pub fn set(&self, position: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(position);
    }

    /// Clears the progress line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
