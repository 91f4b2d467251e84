//! ddb-canary: measures the availability customers see and evaluates customer-facing alarms.

pub mod cfa;
