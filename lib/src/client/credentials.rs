//! [`ClientCredentials`]: the access key and region a client signs with, from flags or the
//! usual AWS environment variables.

use std::fmt;

use crate::sigv4::Credential;

/// The region used when neither a flag nor `AWS_REGION`/`AWS_DEFAULT_REGION` names one.
pub const DEFAULT_REGION: &str = "us-east-1";

/// What the user gave explicitly (command-line flags); `None` falls back to the environment.
#[derive(Clone, Default)]
pub struct CredentialFlags {
    /// `--access-key-id`, else `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `--secret-access-key`, else `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// A session token, else `AWS_SESSION_TOKEN` (only read from the environment when the key
    /// itself came from the environment, so a token never pairs with a key it was not issued
    /// for).
    pub session_token: Option<String>,
    /// `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else [`DEFAULT_REGION`].
    pub region: Option<String>,
}

impl fmt::Debug for CredentialFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFlags")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .finish()
    }
}

/// A resolved signing identity.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The access key pair.
    pub credential: Credential,
    /// The session token for temporary credentials, if any.
    pub session_token: Option<String>,
    /// The region requests are signed for.
    pub region: String,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("credential", &self.credential)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("region", &self.region)
            .finish()
    }
}

/// No access key could be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no {missing}: pass --{flag} or set {variable} (ddbd prints the values to export on first start)"
)]
pub struct MissingCredentials {
    /// What is missing, in words.
    pub missing: &'static str,
    /// The flag that provides it.
    pub flag: &'static str,
    /// The environment variable that provides it.
    pub variable: &'static str,
}

impl ClientCredentials {
    /// Resolves flags first, then the environment as read by `env` (pass
    /// `|name| std::env::var(name).ok()`; tests pass a map). Empty values count as unset.
    pub fn resolve(
        flags: CredentialFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MissingCredentials> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        let key_from_flags = given(flags.access_key_id.clone()).is_some();
        let access_key_id = given(flags.access_key_id)
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
            .ok_or(MissingCredentials {
                missing: "access key id",
                flag: "access-key-id",
                variable: "AWS_ACCESS_KEY_ID",
            })?;
        let secret_access_key = given(flags.secret_access_key)
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
            .ok_or(MissingCredentials {
                missing: "secret access key",
                flag: "secret-access-key",
                variable: "AWS_SECRET_ACCESS_KEY",
            })?;
        let session_token = given(flags.session_token).or_else(|| {
            if key_from_flags {
                None
            } else {
                env("AWS_SESSION_TOKEN")
            }
        });
        let region = given(flags.region)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        Ok(ClientCredentials {
            credential: Credential::new(access_key_id, secret_access_key),
            session_token,
            region,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_supplies_what_flags_leave_out() {
        let resolved = ClientCredentials::resolve(
            CredentialFlags::default(),
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ("AWS_SESSION_TOKEN", "TOKEN"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
            ]),
        )
        .unwrap();
        assert_eq!(resolved.credential, Credential::new("AKID", "SECRET"));
        assert_eq!(resolved.session_token.as_deref(), Some("TOKEN"));
        assert_eq!(resolved.region, "eu-west-1");
    }

    #[test]
    fn flags_win_and_env_token_is_not_paired_with_a_flag_key() {
        let resolved = ClientCredentials::resolve(
            CredentialFlags {
                access_key_id: Some("FLAGKEY".into()),
                secret_access_key: Some("FLAGSECRET".into()),
                session_token: None,
                region: Some("ap-south-1".into()),
            },
            env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                ("AWS_SESSION_TOKEN", "TOKEN"),
                ("AWS_REGION", "eu-west-1"),
            ]),
        )
        .unwrap();
        assert_eq!(resolved.credential.access_key_id, "FLAGKEY");
        assert_eq!(resolved.session_token, None);
        assert_eq!(resolved.region, "ap-south-1");
    }

    #[test]
    fn aws_region_beats_aws_default_region_and_default_is_us_east_1() {
        let keys = [("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "S")];
        let mut with_both = keys.to_vec();
        with_both.extend([("AWS_REGION", "r1"), ("AWS_DEFAULT_REGION", "r2")]);
        let resolved =
            ClientCredentials::resolve(CredentialFlags::default(), env(&with_both)).unwrap();
        assert_eq!(resolved.region, "r1");
        let resolved = ClientCredentials::resolve(CredentialFlags::default(), env(&keys)).unwrap();
        assert_eq!(resolved.region, DEFAULT_REGION);
    }

    #[test]
    fn missing_secret_names_the_flag_and_variable() {
        let error = ClientCredentials::resolve(
            CredentialFlags::default(),
            env(&[("AWS_ACCESS_KEY_ID", "A"), ("AWS_SECRET_ACCESS_KEY", "")]),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("--secret-access-key") && text.contains("AWS_SECRET_ACCESS_KEY"));
    }
}
