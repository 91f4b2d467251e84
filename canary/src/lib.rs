//! ddb-canary: measures the availability customers see and evaluates customer-facing alarms.
//!
//! The probes and the alarm engine arrive with the canary issue; this crate exists so the
//! workspace has its final shape from the start.
