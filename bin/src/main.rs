//! `ddbctl`: the operator's command-line interface to ddb.

fn main() {}
