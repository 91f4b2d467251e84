//! `decode_item` on arbitrary bytes: an error or an item, never a panic or a huge allocation.
//! Whatever decodes must re-encode to the very same bytes (the encoding is canonical) and
//! decode again to the same item.

#![no_main]

use ddb::item::{decode_item, encode_item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(item) = decode_item(data) else {
        return;
    };
    let encoded = encode_item(&item);
    assert_eq!(encoded, data, "decoding accepted a non-canonical encoding");
    assert_eq!(decode_item(&encoded).as_ref(), Ok(&item));
});
