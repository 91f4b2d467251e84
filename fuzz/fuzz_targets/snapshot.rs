//! `decode_snapshot` on arbitrary bytes (an object read back from the archive): an error or a
//! snapshot, never a panic or an unbounded allocation. Whatever decodes re-encodes to a snapshot
//! that decodes to the same items, LSN, time and digest.

#![no_main]

use ddb::archive::{SnapshotWriter, decode_snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(snapshot) = decode_snapshot(data) else {
        return;
    };
    let mut writer = SnapshotWriter::new();
    for (key, item) in &snapshot.items {
        writer
            .push(key, item)
            .expect("decoded items are in key order");
    }
    let (encoded, digest) = writer
        .finish(snapshot.lsn, snapshot.timestamp_ms)
        .expect("a decoded snapshot re-encodes");
    assert_eq!(digest, snapshot.digest);
    let again = decode_snapshot(&encoded).expect("a re-encoded snapshot decodes");
    assert_eq!(again, snapshot);
});
