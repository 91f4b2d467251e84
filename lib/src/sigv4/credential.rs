//! [`Credential`]: an access key id and its secret.

use std::fmt;

/// An access key id and its secret access key. `Debug` shows the id only, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The public half, e.g. `AKIDEXAMPLE`; it appears in every signed request.
    pub access_key_id: String,
    /// The secret half; it never leaves the process.
    pub secret_access_key: String,
}

impl Credential {
    /// A credential from its two halves.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}
