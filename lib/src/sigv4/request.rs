//! [`RequestParts`]: the pieces of an HTTP request SigV4 covers, independent of any HTTP library.

/// A borrowed view of an HTTP request, as it travels on the wire.
///
/// `path` and `query` are the raw, still percent-encoded text of the request target (the part
/// before and after `?`, without the `?`); SigV4 encodes them again in its own way. Header
/// names may be in any case; a header that appears several times is listed several times, in
/// the order received.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The raw path, e.g. `/`.
    pub path: &'a str,
    /// The raw query string without `?`, empty when there is none.
    pub query: &'a str,
    /// Every header as a `(name, value)` pair.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body.
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// The values of every header named `name` (compared case-insensitively), in order.
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let headers = self.headers;
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// True if the request has at least one header named `name` (any case).
    #[must_use]
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
}
