//! `ddbctl archive bucket init`: prepare the bucket an S3 archive lives in.
//!
//! Grammar and behaviour sit together in this one file because the whole command is behind
//! ddbctl's `bucket-admin` feature (it is the only user of `aws-sdk-s3`; `DESIGN.md`, "Archive":
//! object_store carries every data-path request, the AWS SDK only bucket administration).

use std::time::Duration;

use anyhow::{Context, bail};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ObjectLockEnabled,
    VersioningConfiguration,
};
use clap::{Args, Subcommand};
use ddb::archive::{ArchiveUrl, DEFAULT_REGION};
use serde::Serialize;

use super::Outcome;
use crate::cli::{ArchiveArgs, OutputFormat};
use crate::output::{emit, table};

/// How long connecting to the object store may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request, retries included, may take.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per request (the first one included).
const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// Create an S3 archive's bucket; turn on versioning (and object lock if asked).
    ///
    /// Versioning and object lock keep an archived WAL chunk from being lost to a stray delete
    /// or overwrite. The whole bucket is configured: the URL's key prefix plays no part.
    ///
    /// ddb itself only ever creates archive objects (create-only uploads, If-None-Match: *).
    /// Versioning keeps an older version of any object that something else deletes or
    /// overwrites, so it can be recovered. Object lock (WORM) forbids deleting them at all
    /// within a retention period; S3 and MinIO accept it only when the bucket is created, so
    /// ask for it on the first run. It needs versioning.
    ///
    /// Running it again is safe: a bucket that exists and that these credentials can reach is
    /// kept (with its objects) and configured. Credentials come from AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (optional); the region from the URL, then
    /// AWS_REGION, AWS_DEFAULT_REGION, then us-east-1 — as for every archive command.
    ///
    /// Some S3-compatible servers do not implement versioning or object lock (s3s-fs, MinIO's
    /// old filesystem mode). Then the bucket is still created and ready for ddb, a warning
    /// says what is missing, and the exit status is 1; pass --no-versioning to accept a bucket
    /// without versioning. A file:// archive gets its directory created; versioning and object
    /// lock do not apply to it.
    ///
    /// Exit status: 0 the bucket is ready with what was asked; 1 the bucket is ready but
    /// versioning or object lock is not on (each reason printed as a warning); 2 the bucket
    /// could not be created or configured (bad URL, missing credentials, access denied, the
    /// name taken by another account, an unreachable endpoint).
    ///
    /// Example: ddbctl archive bucket init --archive 's3://ddb-archive/prod?endpoint=http://127.0.0.1:9000'
    ///
    /// Example: ddbctl archive bucket init --archive s3://ddb-archive/prod --object-lock   # AWS
    ///
    /// Example: ddbctl archive bucket init --archive 's3://ddb?endpoint=http://127.0.0.1:8014' --no-versioning
    ///
    /// Example: ddbctl archive bucket init --archive file:///var/lib/ddb/archive
    #[command(verbatim_doc_comment)]
    Init(BucketInitArgs),
}

/// `ddbctl archive bucket init`'s flags.
#[derive(Debug, Args)]
pub struct BucketInitArgs {
    #[command(flatten)]
    pub location: ArchiveArgs,
    /// Leave versioning as it is (off on a new bucket). For servers that do not implement it;
    /// a deleted or overwritten chunk then cannot be recovered from the bucket.
    #[arg(long)]
    pub no_versioning: bool,
    /// Create the bucket with object lock enabled (implies versioning). Only possible when the
    /// bucket is created: an existing bucket without object lock is reported, not changed.
    /// Retention rules are set separately (aws s3api put-object-lock-configuration, mc retention).
    #[arg(long, conflicts_with = "no_versioning")]
    pub object_lock: bool,
}

/// What `bucket init` found and did; printed as the result.
#[derive(Debug, Serialize)]
struct BucketReport {
    archive: String,
    /// The bucket (S3) or directory (file) the archive lives in.
    location: String,
    container: Container,
    versioning: Setting,
    object_lock: Setting,
    /// Why versioning or object lock is not on, when they were asked for.
    warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Container {
    Created,
    AlreadyExisted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Setting {
    Enabled,
    NotRequested,
    /// Asked for, and the server answered but the setting is not on.
    NotEnabled,
    /// The server does not implement it.
    Unsupported,
    /// A file archive.
    DoesNotApply,
}

impl Setting {
    fn describe(self) -> &'static str {
        match self {
            Setting::Enabled => "enabled",
            Setting::NotRequested => "not requested",
            Setting::NotEnabled => "NOT enabled",
            Setting::Unsupported => "not supported by the server",
            Setting::DoesNotApply => "does not apply to a file archive",
        }
    }
}

pub async fn run(command: BucketCommand, format: OutputFormat) -> anyhow::Result<Outcome> {
    let BucketCommand::Init(args) = command;
    let url = ArchiveUrl::parse(&args.location.archive)
        .with_context(|| format!("archive URL {}", args.location.archive))?;
    let report = match &url {
        ArchiveUrl::File { root } => {
            let existed = root.is_dir();
            std::fs::create_dir_all(root)
                .with_context(|| format!("creating archive directory {}", root.display()))?;
            BucketReport {
                archive: url.to_string(),
                location: root.display().to_string(),
                container: if existed {
                    Container::AlreadyExisted
                } else {
                    Container::Created
                },
                versioning: Setting::DoesNotApply,
                object_lock: Setting::DoesNotApply,
                warnings: Vec::new(),
            }
        }
        ArchiveUrl::S3 {
            bucket,
            endpoint,
            region,
            ..
        } => {
            let env = |name: &str| std::env::var(name).ok();
            // The precedence ArchiveUrl::open uses, so both clients sign for one region.
            let region = region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| DEFAULT_REGION.to_owned());
            let client = s3_client(endpoint.as_deref(), &region, env)?;
            init_bucket(&client, url.to_string(), bucket, &region, &args).await?
        }
    };
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    emit(format, &report, |report| {
        let mut view = table(&["archive", &report.archive]);
        let container = match report.container {
            Container::Created => "created",
            Container::AlreadyExisted => "already existed, kept",
        };
        view.add_row(vec![report.location.clone(), container.to_owned()]);
        view.add_row(vec!["versioning", report.versioning.describe()]);
        view.add_row(vec!["object lock", report.object_lock.describe()]);
        vec![view]
    })?;
    Ok(if report.warnings.is_empty() {
        Outcome::Clean
    } else {
        Outcome::ProblemFound
    })
}

/// An S3 client for bucket administration, set up like the archive's object_store client:
/// path-style requests (MinIO and most S3-compatible servers), credentials from the
/// environment, and, for an endpoint other than AWS, checksums only where an operation needs
/// one (not every S3-compatible server understands the checksum headers the SDK sends AWS by
/// default).
fn s3_client(
    endpoint: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Client> {
    let access_key = env("AWS_ACCESS_KEY_ID")
        .context("an S3 archive needs AWS_ACCESS_KEY_ID in the environment")?;
    let secret_key = env("AWS_SECRET_ACCESS_KEY")
        .context("an S3 archive needs AWS_SECRET_ACCESS_KEY in the environment")?;
    let credentials = Credentials::new(
        access_key,
        secret_key,
        env("AWS_SESSION_TOKEN"),
        None,
        "environment",
    );
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .force_path_style(true)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    if let Some(endpoint) = endpoint {
        config = config
            .endpoint_url(endpoint)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    Ok(Client::from_conf(config.build()))
}

async fn init_bucket(
    client: &Client,
    archive: String,
    bucket: &str,
    region: &str,
    args: &BucketInitArgs,
) -> anyhow::Result<BucketReport> {
    let container = if bucket_is_reachable(client, bucket).await? {
        Container::AlreadyExisted
    } else {
        create_bucket(client, bucket, region, args.object_lock).await?
    };
    let mut warnings = Vec::new();
    let versioning = if args.no_versioning {
        Setting::NotRequested
    } else {
        enable_versioning(client, bucket, &mut warnings).await?
    };
    let object_lock = if args.object_lock {
        check_object_lock(client, bucket, container, &mut warnings).await?
    } else {
        Setting::NotRequested
    };
    Ok(BucketReport {
        archive,
        location: format!("bucket {bucket}"),
        container,
        versioning,
        object_lock,
        warnings,
    })
}

/// True if the bucket exists and these credentials may use it; false if it does not exist.
async fn bucket_is_reachable(client: &Client, bucket: &str) -> anyhow::Result<bool> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(error) if http_status(&error) == Some(404) => Ok(false),
        Err(error) if http_status(&error) == Some(403) => bail!(
            "access to bucket {bucket} denied (HTTP 403): wrong credentials, another account's \
             bucket, or a policy that denies it"
        ),
        Err(error) => bail!("looking up bucket {bucket}: {}", describe(&error)),
    }
}

async fn create_bucket(
    client: &Client,
    bucket: &str,
    region: &str,
    object_lock: bool,
) -> anyhow::Result<Container> {
    let mut request = client.create_bucket().bucket(bucket);
    // us-east-1 is S3's default location and must not be named; other regions must be.
    if region != DEFAULT_REGION {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    if object_lock {
        request = request.object_lock_enabled_for_bucket(true);
    }
    match request.send().await {
        Ok(_) => Ok(Container::Created),
        // Created meanwhile by someone else: fine if it is reachable with these credentials
        // (servers without accounts, such as s3s-fs, say AlreadyExists even to its owner).
        Err(error)
            if matches!(
                error.code(),
                Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
            ) && bucket_is_reachable(client, bucket).await? =>
        {
            Ok(Container::AlreadyExisted)
        }
        Err(error) => bail!("creating bucket {bucket}: {}", describe(&error)),
    }
}

async fn enable_versioning(
    client: &Client,
    bucket: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Setting> {
    let enabled = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    let put = client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(enabled)
        .send()
        .await;
    // Not read back with GetBucketVersioning: S3 answers 200 only once versioning is on, and
    // moto 5.2.5 answers that read with an XML root aws-sdk-s3 rejects.
    match put {
        Ok(_) => Ok(Setting::Enabled),
        Err(error) if is_unsupported(&error) => {
            warnings.push(format!(
                "the server does not implement bucket versioning ({}): bucket {bucket} is \
                 ready for ddb's create-only uploads, but a chunk deleted or overwritten by \
                 something else cannot be recovered from it; rerun with --no-versioning to \
                 accept that",
                describe(&error)
            ));
            Ok(Setting::Unsupported)
        }
        Err(error) => bail!(
            "turning on versioning of bucket {bucket}: {}",
            describe(&error)
        ),
    }
}

async fn check_object_lock(
    client: &Client,
    bucket: &str,
    container: Container,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Setting> {
    let lock = client
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await;
    let enabled = match &lock {
        Ok(output) => {
            output
                .object_lock_configuration()
                .and_then(|configuration| configuration.object_lock_enabled())
                == Some(&ObjectLockEnabled::Enabled)
        }
        Err(error) if is_unsupported(error) => {
            warnings.push(format!(
                "the server does not implement object lock ({}): objects in bucket {bucket} \
                 can be deleted",
                describe(error)
            ));
            return Ok(Setting::Unsupported);
        }
        Err(error) if error.code() == Some("ObjectLockConfigurationNotFoundError") => false,
        Err(error) => bail!(
            "reading the object lock of bucket {bucket}: {}",
            describe(error)
        ),
    };
    if enabled {
        return Ok(Setting::Enabled);
    }
    warnings.push(match container {
        Container::AlreadyExisted => format!(
            "bucket {bucket} already existed without object lock, which can only be turned on \
             when a bucket is created: use a new bucket to have it"
        ),
        Container::Created => {
            format!("bucket {bucket} was created with object lock, but the server reports it off")
        }
    });
    Ok(Setting::NotEnabled)
}

/// The HTTP status of a failed request, if the server answered at all.
fn http_status<E>(error: &SdkError<E>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}

/// True if the server said it does not implement the operation (S3's `NotImplemented`, 501).
fn is_unsupported<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error.code() == Some("NotImplemented") || http_status(error) == Some(501)
}

/// One line about a failed request: the server's code and message when it answered with an S3
/// error, else the chain of causes (a refused connection, a timeout, a response that does not
/// parse).
fn describe<E>(error: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = http_status(error).map(|status| format!(" (HTTP {status})"));
    if let Some(code) = error.code() {
        let message = error.message().unwrap_or("no message");
        return format!("{code}: {message}{}", status.unwrap_or_default());
    }
    let mut causes: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        let text = current.to_string();
        // Wrappers often repeat their source's text; say each thing once.
        if !causes.iter().any(|said| said.contains(&text)) {
            causes.push(text);
        }
        cause = current.source();
    }
    format!("{}{}", causes.join(": "), status.unwrap_or_default())
}
