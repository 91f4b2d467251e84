//! The replica store: applies committed log entries to durable item state.
