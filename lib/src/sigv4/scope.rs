//! [`CredentialScope`]: the date, region and service a signature is bound to.

use std::fmt;

/// The scope a signing key is derived for and a signature is valid in. `Display` gives the
/// `YYYYMMDD/region/service/aws4_request` form used in `Credential=` and the string to sign.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    /// The UTC day, `YYYYMMDD`.
    pub date: String,
    /// The region, e.g. `us-east-1`.
    pub region: String,
    /// The service, e.g. `dynamodb`.
    pub service: String,
}

/// The fixed last component of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

impl fmt::Display for CredentialScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{SCOPE_TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}
