//! The canonical item encoding and the key encoding reproduce the committed golden vectors in
//! `tests/golden/canonical_v1.json` byte for byte. These formats are on disk forever: if this
//! test fails, the change breaks existing data. Set `DDB_WRITE_GOLDEN=1` only when adding new
//! vectors, and review every new hex string by hand against `docs/formats.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use ddb::item::{
    Item, canonicalize_item, decode_item, decode_key, encode_item, encode_key, item_from_json,
    partition_hash, validate_item,
};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/canonical_v1.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        write!(out, "{byte:02x}").unwrap();
        out
    })
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// What the code computes for one vector: canonical hex, key hex, partition hash hex.
fn compute(vector: &serde_json::Value) -> (String, String, String) {
    let item: Item = item_from_json(&vector["item"]).unwrap();
    validate_item(&item).unwrap();
    let key = &vector["key"];
    let table_id = key["table_id"].as_u64().unwrap();
    let partition_key = &item[key["partition_key"].as_str().unwrap()];
    let sort_key = key["sort_key"].as_str().map(|name| &item[name]);
    let key_bytes = encode_key(table_id, partition_key, sort_key).unwrap();
    let decoded = decode_key(&key_bytes).unwrap();
    assert_eq!(decoded.table_id, table_id);
    assert_eq!(&decoded.partition_key, partition_key);
    assert_eq!(decoded.sort_key.as_ref(), sort_key);
    (
        hex(&encode_item(&item)),
        hex(&key_bytes),
        format!("{:016x}", partition_hash(partition_key).unwrap()),
    )
}

#[test]
fn encodings_reproduce_the_golden_vectors() {
    let text = std::fs::read_to_string(golden_path()).unwrap();
    let mut golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = golden["vectors"].as_array_mut().unwrap();
    assert!(vectors.len() >= 20, "the golden file lost vectors");
    if std::env::var_os("DDB_WRITE_GOLDEN").is_some() {
        for vector in vectors.iter_mut() {
            let (canonical, key, hash) = compute(vector);
            vector["canonical_hex"] = canonical.into();
            vector["key"]["hex"] = key.into();
            vector["key"]["partition_hash"] = hash.into();
        }
        let written = serde_json::to_string_pretty(&golden).unwrap() + "\n";
        std::fs::write(golden_path(), written).unwrap();
        return;
    }
    for vector in vectors.iter() {
        let name = vector["name"].as_str().unwrap();
        let (canonical, key, hash) = compute(vector);
        assert_eq!(
            canonical, vector["canonical_hex"],
            "canonical encoding of {name:?}"
        );
        assert_eq!(key, vector["key"]["hex"], "key encoding of {name:?}");
        assert_eq!(
            hash, vector["key"]["partition_hash"],
            "partition hash of {name:?}"
        );
        // The committed bytes decode to the item, with sets sorted.
        let mut expected = item_from_json(&vector["item"]).unwrap();
        canonicalize_item(&mut expected);
        let committed = unhex(vector["canonical_hex"].as_str().unwrap());
        assert_eq!(
            decode_item(&committed).unwrap(),
            expected,
            "decoding {name:?}"
        );
    }
}
