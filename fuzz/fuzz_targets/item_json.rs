//! `item_from_json_str` on arbitrary text: an error or an item, never a panic. A parsed item
//! survives `item_to_json` and back, and validation answers without panicking.

#![no_main]

use ddb::item::{item_from_json, item_from_json_str, item_to_json, validate_item};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(item) = item_from_json_str(text) else {
        return;
    };
    let _ = validate_item(&item);
    let json = item_to_json(&item);
    assert_eq!(item_from_json(&json).as_ref(), Ok(&item), "via {json}");
});
