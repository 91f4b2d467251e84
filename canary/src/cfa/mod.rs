//! The customer-facing alarm (CFA) engine: being written.
