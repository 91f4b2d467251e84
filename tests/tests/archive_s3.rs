//! The archive against real S3-compatible servers (`docs/archive-testing.md`): `ddbctl archive
//! bucket init` prepares the bucket, then create-only uploads, listing and verification go
//! through ddb's own archive code over HTTP. s3s-fs is the main server (it checks signatures and
//! keeps objects as files, so a test can damage one); moto serves the concurrent create-only
//! race, which s3s-fs does not make atomic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ddb::archive::{
    Archive, ArchiveError, ChunkError, Problem, SealError, Uploaded, WalChunkName, encode_chunk,
    list_chunks, upload_chunk, verify_partition,
};
use ddb::digest::StateDigest;
use ddb::wal::{Ballot, Entry, Lsn, Operation};
use ddb_tests::s3::{Moto, S3Server, S3sFs};
use object_store::ObjectStoreExt;
use serde_json::Value;

const TABLE: u64 = 4;
const PARTITION: u64 = 17;
const BUCKET: &str = "ddb-archive";
const PREFIX: &str = "cluster-a";
/// A ddbctl run against a live server takes well under a second; this bounds a hung one.
const DDBCTL_LIMIT: Duration = Duration::from_secs(60);
/// How long an archive request may take to give up on a stopped server. object_store retries a
/// refused connection 10 times with a growing backoff: about 2 s measured, a minute at worst.
const OUTAGE_LIMIT: Duration = Duration::from_secs(120);

fn name(first: u64, last: u64) -> WalChunkName {
    WalChunkName {
        table_id: TABLE,
        partition_id: PARTITION,
        first: Lsn(first),
        last: Lsn(last),
    }
}

/// A valid chunk of entries `first..=last`; `writer` changes the items, so two writers' chunks
/// for the same LSNs differ.
fn chunk(first: u64, last: u64, writer: &str) -> Bytes {
    let entries: Vec<Entry> = (first..=last)
        .map(|lsn| Entry {
            lsn: Lsn(lsn),
            ballot: Ballot { round: 3, node: 2 },
            timestamp_ms: 1_790_000_000_000 + lsn,
            op: Operation::Put {
                key: format!("k{lsn}").into_bytes(),
                item: format!("{writer} wrote {lsn}").into_bytes(),
            },
        })
        .collect();
    let digest = StateDigest::of_item(writer.as_bytes(), format!("at {last}").as_bytes());
    Bytes::from(encode_chunk(&entries, &digest).unwrap())
}

async fn stored(archive: &Archive, chunk: &WalChunkName) -> Bytes {
    archive
        .get(&archive.path_of(&chunk.key()).unwrap())
        .await
        .unwrap()
}

/// Runs the real ddbctl with `env`, killing it past `limit`.
fn ddbctl(args: &[&str], env: &[(&'static str, String)], limit: Duration) -> Output {
    let out = tempfile::tempdir().unwrap();
    let stdout_path = out.path().join("stdout");
    let stderr_path = out.path().join("stderr");
    let mut child = Command::new(ddb_tests::binary("ddbctl"))
        .args(args)
        .env_remove("AWS_SESSION_TOKEN")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ddbctl {args:?} still running after {limit:?}; stderr so far:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&stdout_path).unwrap(),
        stderr: std::fs::read(&stderr_path).unwrap(),
    }
}

/// `ddbctl -o json archive bucket init --archive URL EXTRA…`: exit code, JSON report, stderr.
fn bucket_init(url: &str, env: &[(&'static str, String)], extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["-o", "json", "archive", "bucket", "init", "--archive", url];
    args.extend_from_slice(extra);
    let output = ddbctl(&args, env, DDBCTL_LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), report, stderr)
}

/// s3s-fs in a fresh directory, with the test bucket made by `bucket init --no-versioning`.
fn s3s_fs_with_bucket() -> (tempfile::TempDir, S3sFs) {
    let dir = tempfile::tempdir().unwrap();
    let server = S3sFs::start(&dir.path().join("data"));
    let url = server.archive_url(BUCKET, PREFIX);
    let (code, report, stderr) = bucket_init(&url, &server.env(), &["--no-versioning"]);
    assert_eq!(code, 0, "bucket init failed: {stderr}");
    assert_eq!(report["container"], "created");
    (dir, server)
}

#[test]
fn bucket_init_on_s3s_fs_creates_the_bucket_warns_that_versioning_is_missing_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3sFs::start(&dir.path().join("data"));
    let url = server.archive_url(BUCKET, PREFIX);

    let (code, report, stderr) = bucket_init(&url, &server.env(), &[]);
    assert_eq!(
        code, 1,
        "versioning missing must be a distinct outcome: {stderr}"
    );
    assert_eq!(report["container"], "created");
    assert_eq!(report["versioning"], "unsupported");
    assert!(
        stderr.contains("does not implement bucket versioning")
            && stderr.contains("--no-versioning"),
        "the warning must say what is missing and how to accept it: {stderr}"
    );
    assert!(
        server.dir().join(BUCKET).is_dir(),
        "s3s-fs keeps a bucket as a directory"
    );

    // Again, accepting the missing versioning: the bucket is kept, and that is a success.
    let (code, report, stderr) = bucket_init(&url, &server.env(), &["--no-versioning"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["container"], "already_existed");
    assert_eq!(report["versioning"], "not_requested");

    // Wrong credentials are an error, not a new bucket.
    let wrong = [
        ("AWS_ACCESS_KEY_ID", ddb_tests::s3::ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret".to_owned()),
    ];
    let (code, _, stderr) = bucket_init(&server.archive_url("other-bucket", ""), &wrong, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!server.dir().join("other-bucket").exists());
}

/// Whether moto itself says the bucket is versioned.
fn versioning_is_on(server: &Moto, bucket: &str) -> bool {
    server
        .get(&format!("/{bucket}?versioning"))
        .contains("<Status>Enabled</Status>")
}

#[test]
fn bucket_init_on_moto_enables_versioning_and_object_lock_and_reports_a_bucket_without_lock() {
    let server = Moto::start();
    let url = server.archive_url("ddb-locked", PREFIX);

    let (code, report, stderr) = bucket_init(&url, &server.env(), &["--object-lock"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["container"], "created");
    assert_eq!(report["versioning"], "enabled");
    assert_eq!(report["object_lock"], "enabled");
    // Checked from outside ddbctl, with the server's own answers.
    assert!(versioning_is_on(&server, "ddb-locked"));
    assert!(
        server
            .get("/ddb-locked?object-lock")
            .contains("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")
    );

    let (code, report, stderr) = bucket_init(&url, &server.env(), &["--object-lock"]);
    assert_eq!(code, 0, "a second run must succeed: {stderr}");
    assert_eq!(report["container"], "already_existed");

    // A plain bucket cannot get object lock afterwards: reported, exit 1, bucket kept.
    let plain = server.archive_url("ddb-plain", "");
    let (code, report, stderr) = bucket_init(&plain, &server.env(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["object_lock"], "not_requested");
    assert!(versioning_is_on(&server, "ddb-plain"));
    let (code, report, stderr) = bucket_init(&plain, &server.env(), &["--object-lock"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["object_lock"], "not_enabled");
    assert!(
        stderr.contains("only be turned on when a bucket is created"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_only_uploads_on_s3s_fs_are_created_then_already_there_and_never_overwritten() {
    let (_dir, server) = s3s_fs_with_bucket();
    let archive = server.open_archive(BUCKET, PREFIX);
    let first = chunk(1, 10, "leader");

    let created = upload_chunk(&archive, &name(1, 10), first.clone()).await;
    assert_eq!(created.unwrap(), Uploaded::Created);
    let again = upload_chunk(&archive, &name(1, 10), first.clone()).await;
    assert_eq!(again.unwrap(), Uploaded::AlreadyThere);

    let conflicting = upload_chunk(&archive, &name(1, 10), chunk(1, 10, "usurper")).await;
    match conflicting {
        Err(ArchiveError::SplitBrain { path }) => {
            assert!(path.ends_with(&name(1, 10).key()), "{path}");
        }
        other => panic!("expected split brain, got {other:?}"),
    }
    assert_eq!(stored(&archive, &name(1, 10)).await, first);
    let key = format!("{PREFIX}/{}", name(1, 10).key());
    assert_eq!(
        std::fs::read(server.object_file(BUCKET, &key)).unwrap(),
        first,
        "the server's own copy must be the first upload"
    );

    upload_chunk(&archive, &name(11, 12), chunk(11, 12, "leader"))
        .await
        .unwrap();
    let chunks = list_chunks(&archive, TABLE, PARTITION).await.unwrap();
    assert_eq!(chunks, vec![name(1, 10), name(11, 12)]);
    let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
    assert!(report.is_sound(), "{:?}", report.problems);
    assert_eq!(report.last_verified_lsn, Lsn(12));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_chunk_corrupted_on_the_server_and_one_deleted_from_the_bucket() {
    let (_dir, server) = s3s_fs_with_bucket();
    let archive = server.open_archive(BUCKET, PREFIX);
    for (first, last) in [(1, 9), (10, 19), (20, 29), (30, 39)] {
        upload_chunk(&archive, &name(first, last), chunk(first, last, "leader"))
            .await
            .unwrap();
    }
    // Bit rot in one object's file, behind the server's back…
    let rotten = server.object_file(BUCKET, &format!("{PREFIX}/{}", name(10, 19).key()));
    let mut bytes = std::fs::read(&rotten).unwrap();
    bytes[5] ^= 0x01;
    std::fs::write(&rotten, bytes).unwrap();
    // …and another deleted through the S3 API.
    let deleted = archive.path_of(&name(20, 29).key()).unwrap();
    archive.store().delete(&deleted).await.unwrap();

    let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
    assert_eq!(
        report.problems,
        vec![
            Problem::Corrupt {
                object: name(10, 19).key(),
                error: ChunkError::Seal(SealError::BodyHashMismatch),
            },
            Problem::Gap {
                before: name(10, 19).key(),
                after: name(30, 39).key(),
                missing_from: Lsn(20),
                missing_to: Lsn(29),
            },
        ]
    );
    assert_eq!(report.last_verified_lsn, Lsn(9));

    let url = server.archive_url(BUCKET, PREFIX);
    let env = server.env();
    let output = tokio::task::spawn_blocking(move || {
        ddbctl(
            &["-o", "json", "archive", "verify", "--archive", &url],
            &env,
            DDBCTL_LIMIT,
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "a problem found is exit 1");
    let verdicts: Value = serde_json::from_slice(&output.stdout).unwrap();
    let problems = verdicts[0]["problems"].to_string();
    for object in [name(10, 19).key(), name(30, 39).key()] {
        assert!(
            problems.contains(&object),
            "{object} not named in {problems}"
        );
    }
    assert!(problems.contains("20..=29"), "{problems}");
    assert_eq!(verdicts[0]["last_verified_lsn"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_operations_fail_while_s3s_fs_is_down_and_work_again_after_it_restarts() {
    let (_dir, mut server) = s3s_fs_with_bucket();
    let archive = server.open_archive(BUCKET, PREFIX);
    upload_chunk(&archive, &name(1, 5), chunk(1, 5, "leader"))
        .await
        .unwrap();

    server.stop();
    let url = server.archive_url(BUCKET, PREFIX);
    let env = server.env();
    let down_since = Instant::now();
    // The library and the CLI, at once: each retries for a while, then must give up.
    let cli = tokio::task::spawn_blocking(move || {
        ddbctl(
            &["archive", "verify", "--archive", &url],
            &env,
            OUTAGE_LIMIT,
        )
    });
    let next = name(6, 9);
    let upload = tokio::time::timeout(
        OUTAGE_LIMIT,
        upload_chunk(&archive, &next, chunk(6, 9, "leader")),
    );
    let list = tokio::time::timeout(OUTAGE_LIMIT, list_chunks(&archive, TABLE, PARTITION));
    let (upload, list) = tokio::join!(upload, list);
    let upload = upload.expect("an upload to a stopped server must end with an error, not hang");
    let list = list.expect("a listing of a stopped server must end with an error, not hang");
    assert!(
        matches!(
            upload,
            Err(ArchiveError::ObjectStore {
                operation: "put",
                ..
            })
        ),
        "{upload:?}"
    );
    assert!(
        matches!(
            list,
            Err(ArchiveError::ObjectStore {
                operation: "list",
                ..
            })
        ),
        "{list:?}"
    );
    let cli = cli.await.unwrap();
    assert_eq!(
        cli.status.code(),
        Some(2),
        "an unreadable archive is exit 2"
    );
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    eprintln!("the outage was reported after {:?}", down_since.elapsed());

    server.restart();
    let retried = upload_chunk(&archive, &next, chunk(6, 9, "leader")).await;
    assert_eq!(retried.unwrap(), Uploaded::Created);
    let report = verify_partition(&archive, TABLE, PARTITION).await.unwrap();
    assert!(report.is_sound(), "{:?}", report.problems);
    assert_eq!(report.last_verified_lsn, Lsn(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_only_uploads_on_moto_leave_exactly_one_winner_and_its_bytes() {
    const WRITERS: usize = 8;
    const ROUNDS: u64 = 5;
    let server = Moto::start();
    let url = server.archive_url(BUCKET, PREFIX);
    let env = server.env();
    let (code, _, stderr) =
        tokio::task::spawn_blocking(move || bucket_init(&url, &env, &["--no-versioning"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{stderr}");
    // Each writer has its own client, as separate archivers would.
    let archives: Vec<Arc<Archive>> = (0..WRITERS)
        .map(|_| Arc::new(server.open_archive(BUCKET, PREFIX)))
        .collect();

    for round in 0..ROUNDS {
        let (first, last) = (round * 10 + 1, round * 10 + 10);
        let contenders: Vec<Bytes> = (0..WRITERS)
            .map(|writer| chunk(first, last, &format!("writer {writer}")))
            .collect();
        let start = Arc::new(tokio::sync::Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for (archive, bytes) in archives.iter().zip(&contenders) {
            let (archive, bytes, start) = (archive.clone(), bytes.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                upload_chunk(&archive, &name(first, last), bytes).await
            }));
        }
        let mut winners = Vec::new();
        for (writer, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(Uploaded::Created) => winners.push(writer),
                Err(ArchiveError::SplitBrain { .. }) => {}
                other => panic!("round {round}, writer {writer}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            stored(&archives[0], &name(first, last)).await,
            contenders[winners[0]],
            "round {round}: the stored object must be the winner's, never overwritten"
        );
    }
    let chunks = list_chunks(&archives[0], TABLE, PARTITION).await.unwrap();
    assert_eq!(chunks.len(), ROUNDS as usize);
    let report = verify_partition(&archives[0], TABLE, PARTITION)
        .await
        .unwrap();
    assert!(report.is_sound(), "{:?}", report.problems);
}
