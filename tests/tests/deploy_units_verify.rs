//! Every systemd unit in `deploy/systemd/` passes `systemd-analyze verify`, with its
//! `ExecStart` binary pointed at the one this build made (the unit names
//! /usr/local/bin/<binary>, which a test machine does not have).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd");
    let work = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&deploy).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "service") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let binary = text
            .lines()
            .find_map(|line| line.strip_prefix("ExecStart=/usr/local/bin/"))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{}: no ExecStart=/usr/local/bin/…", path.display()))
            .to_string();
        let built = ddb_tests::binary(&binary);
        let unit = work.path().join(path.file_name().unwrap());
        std::fs::write(
            &unit,
            text.replace(
                &format!("/usr/local/bin/{binary}"),
                &built.display().to_string(),
            ),
        )
        .unwrap();
        let verified = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .unwrap_or_else(|e| {
                panic!("running systemd-analyze (Debian package systemd; .ci/run installs it): {e}")
            });
        assert!(
            verified.status.success() && verified.stderr.is_empty(),
            "{}: {}{}",
            path.display(),
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 1, "no units in {}", deploy.display());
}
