//! `ddbctl completions <SHELL>` prints a script that completes ddbctl's real commands and
//! flags (bash's is loaded into a real bash and asked for candidates), and `ddbctl man` writes
//! one roff page per command, named after the command path, holding that command's help.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::ddbctl;

fn completion_script(shell: &str) -> String {
    let (code, stdout, stderr) = ddbctl(&["completions", shell]);
    assert_eq!(code, 0, "ddbctl completions {shell}: {stderr}");
    stdout
}

/// Loads the bash script into a non-interactive bash, completes the last of `words` (the words
/// typed so far after `ddbctl`; the last may be empty) as bash would on TAB, and returns the
/// candidates.
fn bash_candidates(script: &Path, words: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["ddbctl"];
    all.extend_from_slice(words);
    let quoted: Vec<String> = all.iter().map(|w| format!("'{w}'")).collect();
    let line = all.join(" ");
    let current = all[all.len() - 1];
    let previous = all[all.len() - 2];
    let program = format!(
        r#"source "$1" || exit 3
complete -p ddbctl >/dev/null || exit 4
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE='{line}'
COMP_POINT=${{#COMP_LINE}}
_ddbctl ddbctl '{current}' '{previous}'
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" "),
        cword = all.len() - 1,
    );
    let out = Command::new("bash")
        .args(["-c", &program, "bash", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash could not load the script or complete {words:?} ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn set(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn bash_completion_offers_real_subcommands_and_flags() {
    let script = completion_script("bash");
    for word in ["scrub", "archive", "alarms", "repair", "--endpoint"] {
        assert!(script.contains(word), "bash script lacks {word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ddbctl.bash");
    std::fs::write(&path, &script).unwrap();

    assert_eq!(bash_candidates(&path, &["scr"]), set(&["scrub"]));
    assert_eq!(bash_candidates(&path, &["al"]), set(&["alarms"]));
    assert_eq!(
        bash_candidates(&path, &["scrub", "re"]),
        set(&["repair", "report", "resume"])
    );
    assert_eq!(
        bash_candidates(&path, &["archive", "restore", "--to"]),
        set(&["--to-lsn", "--to-time"])
    );
    assert_eq!(bash_candidates(&path, &["--endp"]), set(&["--endpoint"]));
    assert!(
        bash_candidates(&path, &["completions", ""]).is_superset(&set(&[
            "bash",
            "elvish",
            "fish",
            "powershell",
            "zsh"
        ]))
    );
    assert_eq!(
        bash_candidates(&path, &["completions", "p"]),
        set(&["powershell"])
    );
}

#[test]
fn zsh_completion_describes_real_subcommands_and_flags() {
    let script = completion_script("zsh");
    assert!(script.starts_with("#compdef ddbctl"), "{script:.200}");
    // Subcommands are listed with their one-line help, flags with theirs.
    for entry in [
        "'scrub:Ask the scrubber what it proved",
        "'archive:Inspect the WAL archive",
        "'alarms:Customer-facing and operational alarms",
        "'repair:Rebuild every replica the last pass named odd",
        "'--endpoint=[The node",
        "--to-lsn=[Restore one partition",
    ] {
        assert!(script.contains(entry), "zsh script lacks {entry}");
    }
}

#[test]
fn fish_elvish_and_powershell_scripts_complete_nested_commands() {
    // Each registers itself for `ddbctl` and offers `scrub repair`'s own flag there.
    for (shell, expected) in [
        (
            "fish",
            [
                "complete -c ddbctl ",
                "__fish_seen_subcommand_from repair\" -l partition",
            ],
        ),
        (
            "elvish",
            ["arg-completer[ddbctl]", "&'ddbctl;scrub;repair'="],
        ),
        (
            "powershell",
            ["-CommandName 'ddbctl'", "'ddbctl;scrub;repair' {"],
        ),
    ] {
        let script = completion_script(shell);
        for text in expected.iter().chain(&["alarms", "silence", "--endpoint"]) {
            assert!(script.contains(text), "{shell} script lacks {text:?}");
        }
        // The repair block runs up to the next subcommand's block (elvish, powershell); fish's
        // marker holds the flag itself.
        let repair = &script[script.find(expected[1]).unwrap()..];
        let marker_len = expected[1].len();
        let block_end = repair[marker_len..]
            .find("'ddbctl;")
            .map_or(repair.len(), |end| end + marker_len);
        assert!(
            repair[..block_end].contains("partition"),
            "{shell}: scrub repair offers no --partition"
        );
    }
}

#[test]
fn an_unsupported_shell_is_refused_with_the_supported_ones() {
    let (code, stdout, stderr) = ddbctl(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(stderr.contains(shell), "{stderr}");
    }
}

/// The page's text with roff's escaped hyphens (`\-`) plain, for searching.
fn read_page(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\\-", "-")
}

/// Minimal roff validity: the first line that is text or a title is the `.TH` title naming
/// `title` in section 1 (only requests may precede it: clap_mangen defines a string there).
fn assert_titled(page: &str, title: &str) {
    let first = page
        .lines()
        .find(|line| line.starts_with(".TH") || !line.starts_with('.'))
        .unwrap_or("");
    assert!(
        first.starts_with(&format!(".TH {title} 1")),
        "no .TH title for {title} before the page's text: {page:.300}"
    );
}

/// Where `man` is installed, it formats the page without a warning and the text a reader sees
/// holds each of `expected`; without `man`, says so (the roff checks still ran).
fn assert_man_renders(path: &Path, expected: &[&str]) {
    let rendered = match Command::new("man")
        .arg("-l")
        .arg(path)
        .env("LC_ALL", "C.UTF-8")
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("man is not installed: {} not rendered", path.display());
            return;
        }
        Err(e) => panic!("running man: {e}"),
    };
    let stderr = String::from_utf8_lossy(&rendered.stderr);
    assert!(
        rendered.status.success() && stderr.is_empty(),
        "man -l {}: {} {stderr}",
        path.display(),
        rendered.status
    );
    let text = String::from_utf8(rendered.stdout).unwrap();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in expected {
        assert!(
            text.contains(phrase),
            "man shows no {phrase:?}: {text:.400}"
        );
    }
}

#[test]
fn man_writes_one_page_per_command_holding_its_help() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that does not exist yet: ddbctl creates it.
    let out_dir = dir.path().join("share/man/man1");
    let (code, stdout, stderr) = ddbctl(&[
        "man",
        "--dir",
        out_dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let reported: BTreeSet<String> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reported, on_disk,
        "the report names exactly the files written"
    );

    let names: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    for page in [
        "ddbctl.1",
        "ddbctl-scrub.1",
        "ddbctl-scrub-repair.1",
        "ddbctl-archive-restore.1",
        "ddbctl-table-create.1",
        "ddbctl-alarms-silence.1",
        "ddbctl-completions.1",
        "ddbctl-man.1",
    ] {
        assert!(names.contains(page), "no {page} among {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("ddbctl-help")),
        "clap's help subcommand is not a ddbctl command: {names:?}"
    );

    let repair_path = out_dir.join("ddbctl-scrub-repair.1");
    let repair = read_page(&repair_path);
    assert_titled(&repair, "ddbctl-scrub-repair");
    for text in [
        ".SH NAME",
        ".SH SYNOPSIS",
        // Its --help text, the long description included, and its own and global flags.
        "Rebuild every replica the last pass named odd",
        "Example: ddbctl scrub repair --partition 12",
        "--partition",
        "--scrubber",
        "DDB_SCRUBBER",
        "--endpoint",
    ] {
        assert!(
            repair.contains(text),
            "ddbctl-scrub-repair.1 lacks {text:?}"
        );
    }
    assert_man_renders(
        &repair_path,
        &[
            "NAME ddbctl-scrub-repair - Rebuild every replica",
            "SYNOPSIS ddbctl scrub repair",
            "--partition <ID> Repair only this partition's odd replicas",
        ],
    );

    let top = read_page(&out_dir.join("ddbctl.1"));
    assert_titled(&top, "ddbctl");
    for text in ["ddbctl-scrub(1)", "ddbctl-archive(1)", "Exit status:"] {
        assert!(top.contains(text), "ddbctl.1 lacks {text:?}");
    }
}

#[test]
fn man_writes_into_man_under_the_working_directory_by_default() {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ddbctl"))
        .arg("man")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(printed.first().map(String::as_str), Some("man/ddbctl.1"));
    assert!(printed.iter().any(|p| p == "man/ddbctl-scrub-repair.1"));
    for page in &printed {
        let title = page
            .strip_prefix("man/")
            .and_then(|name| name.strip_suffix(".1"))
            .unwrap_or_else(|| panic!("{page} is not man/<title>.1"));
        assert_titled(&read_page(&cwd.path().join(page)), title);
    }
}
