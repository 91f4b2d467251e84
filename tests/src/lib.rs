//! Shared helpers for ddb's cross-process tests (the tests live in `tests/tests/`).
