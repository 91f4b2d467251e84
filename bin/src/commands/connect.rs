//! Building a [`Client`] from the global connection flags.

use std::time::Duration;

use anyhow::Context;
use ddb::client::{Client, ClientConfig, ClientCredentials, CredentialFlags};

use crate::cli::ConnectionArgs;

/// A client for the endpoint and credentials the flags (or AWS_* variables) name.
pub fn client(args: &ConnectionArgs) -> anyhow::Result<Client> {
    let credentials = ClientCredentials::resolve(
        CredentialFlags {
            access_key_id: args.access_key_id.clone(),
            secret_access_key: args.secret_access_key.clone(),
            session_token: None,
            region: args.region.clone(),
        },
        |name| std::env::var(name).ok(),
    )?;
    Ok(Client::new(ClientConfig {
        endpoint: args.endpoint.clone(),
        credential: credentials.credential,
        session_token: credentials.session_token,
        region: credentials.region,
        timeout: timeout(args)?,
    })?)
}

/// `--timeout` as a duration; fails unless it is a positive number of seconds.
pub fn timeout(args: &ConnectionArgs) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .with_context(|| {
            format!(
                "--timeout {} is not a positive number of seconds",
                args.timeout
            )
        })
}
