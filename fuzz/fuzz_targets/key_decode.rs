//! `decode_key` on arbitrary bytes: an error or a key, never a panic. Whatever decodes must
//! re-encode to the same bytes.

#![no_main]

use ddb::item::{decode_key, encode_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = decode_key(data) else {
        return;
    };
    let encoded = encode_key(key.table_id, &key.partition_key, key.sort_key.as_ref());
    assert_eq!(encoded.as_deref(), Ok(data), "decoded {key:?}");
});
