//! A real ddbd's internal API (`/internal/…`, for the archiver and the scrubber) refuses every
//! route to a request without a token it accepts — one layer in front of all of them — and
//! answers the same routes with the token from its data directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ddb_tests::{NodeProcess, binary, http_get, internal_call};

/// Every internal route, with its method (partition 0 is the metadata group).
const ROUTES: [(&str, &str); 10] = [
    ("GET", "/internal/archive/partitions"),
    ("GET", "/internal/archive/digest?partition=0&at_most=1"),
    ("POST", "/internal/archive/watermark"),
    ("GET", "/internal/catalog"),
    ("GET", "/internal/partitions/0/snapshot"),
    ("GET", "/internal/scrub/replicas"),
    ("POST", "/internal/partitions/0/full-scan"),
    ("POST", "/internal/partitions/0/repair?from=2"),
    ("POST", "/internal/fault/errors?rate=0"),
    ("GET", "/internal/partitions/0/key-hashes"),
];

#[test]
fn every_internal_route_refuses_a_wrong_or_missing_token() {
    let node = NodeProcess::start(&binary("ddbd")).unwrap();
    for (method, path) in ROUTES {
        let (code, body) = internal_call(node.port(), "not-the-token", method, path);
        assert_eq!(code, 403, "{method} {path} with a wrong token: {body}");
    }
    // No token at all: refused before the handler (the catalog would answer with JSON).
    let body = http_get(node.port(), "/internal/catalog").unwrap();
    assert!(!body.trim_start().starts_with('{'), "{body}");
    // The node's own token opens the same routes.
    let (code, body) = node.internal_get("/internal/catalog").unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = node.internal_get("/internal/scrub/replicas").unwrap();
    assert_eq!(code, 200, "{body}");
}
