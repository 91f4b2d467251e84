//! `Entry::decode` on arbitrary bytes: an error or an entry, never a panic. Whatever decodes must
//! re-encode to the same bytes.

#![no_main]

use ddb::wal::Entry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = Entry::decode(data) else {
        return;
    };
    let encoded = entry.encode();
    assert_eq!(entry.encoded_len(), encoded.len());
    assert_eq!(encoded, data, "decoded {entry:?}");
});
