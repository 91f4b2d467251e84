//! The LtHash16 state digest of a partition replica.
