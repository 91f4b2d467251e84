//! `decode_chunk` on arbitrary bytes (an object read back from the archive): an error or a
//! chunk, never a panic. Whatever decodes re-encodes to a chunk that decodes to the same.

#![no_main]

use ddb::archive::{decode_chunk, encode_chunk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(chunk) = decode_chunk(data) else {
        return;
    };
    let encoded = encode_chunk(&chunk.entries, &chunk.digest).expect("a decoded chunk re-encodes");
    let again = decode_chunk(&encoded).expect("a re-encoded chunk decodes");
    assert_eq!(again.entries, chunk.entries);
    assert_eq!(again.digest, chunk.digest);
});
