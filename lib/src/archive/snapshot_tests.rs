//! The snapshot format: round trips, and every kind of damage named.

use super::*;
use crate::digest::digest_of_items;

fn items(count: usize) -> Vec<KeyItem> {
    (0..count)
        .map(|i| {
            let key = format!("\0\0\0\0\0\0\0\x07key{i:05}").into_bytes();
            let item = format!("item {i} {}", "x".repeat(i % 50)).into_bytes();
            (key, item)
        })
        .collect()
}

fn encode(items: &[KeyItem], lsn: u64, timestamp_ms: u64) -> Vec<u8> {
    let mut writer = SnapshotWriter::new();
    for (key, item) in items {
        writer.push(key, item).unwrap();
    }
    writer.finish(Lsn(lsn), timestamp_ms).unwrap().0
}

/// Offsets of footer fields, counted from the footer's start.
const COUNT_AT: usize = 12;
const LSN_AT: usize = 20;
const BODY_LEN_AT: usize = 36;
const BODY_HASH_AT: usize = 44;
const DIGEST_AT: usize = 76;

/// Overwrites a footer field and recomputes the footer CRC, as a buggy writer would.
fn reseal(snapshot: &mut [u8], field_at: usize, value: &[u8]) {
    let start = snapshot.len() - SNAPSHOT_FOOTER_LEN;
    snapshot[start + field_at..start + field_at + value.len()].copy_from_slice(value);
    let end = snapshot.len();
    let crc = crc32c::crc32c(&snapshot[start..end - 4]);
    snapshot[end - 4..].copy_from_slice(&crc.to_le_bytes());
}

/// A snapshot whose body is `raw` (uncompressed records) with a footer consistent with the body
/// bytes, claiming `count` items and the digest of `digest_items`.
fn sealed_over(raw: &[u8], count: u64, digest_items: &[KeyItem]) -> Vec<u8> {
    let mut out = zstd::bulk::compress(raw, 3).unwrap();
    let body_len = out.len();
    let body_hash = *blake3::hash(&out).as_bytes();
    let template = encode(&[], 9, 1);
    out.extend_from_slice(&template[template.len() - SNAPSHOT_FOOTER_LEN..]);
    reseal(&mut out, COUNT_AT, &count.to_le_bytes());
    reseal(&mut out, BODY_LEN_AT, &(body_len as u64).to_le_bytes());
    reseal(&mut out, BODY_HASH_AT, &body_hash);
    reseal(
        &mut out,
        DIGEST_AT,
        &digest_of_items(digest_items.iter().map(|(k, v)| (k, v))).to_bytes(),
    );
    out
}

fn records(items: &[KeyItem]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (key, item) in items {
        raw.extend_from_slice(&(key.len() as u32).to_le_bytes());
        raw.extend_from_slice(key);
        raw.extend_from_slice(&(item.len() as u32).to_le_bytes());
        raw.extend_from_slice(item);
    }
    raw
}

#[test]
fn a_snapshot_round_trips_its_items_lsn_time_and_digest() {
    for count in [0, 1, 2, 500] {
        let written = items(count);
        let mut writer = SnapshotWriter::new();
        for (key, item) in &written {
            writer.push(key, item).unwrap();
        }
        let (bytes, digest) = writer.finish(Lsn(77), 1_790_000_000_123).unwrap();
        assert_eq!(digest, digest_of_items(written.iter().map(|(k, v)| (k, v))));
        let snapshot = decode_snapshot(&bytes).unwrap();
        assert_eq!(snapshot.items, written);
        assert_eq!(snapshot.lsn, Lsn(77));
        assert_eq!(snapshot.timestamp_ms, 1_790_000_000_123);
        assert_eq!(snapshot.digest, digest);
    }
}

#[test]
fn the_body_is_compressed() {
    let written = items(2000);
    let raw_len = records(&written).len();
    let bytes = encode(&written, 5, 5);
    assert!(
        bytes.len() - SNAPSHOT_FOOTER_LEN < raw_len / 2,
        "{} compressed bytes for {raw_len} raw",
        bytes.len() - SNAPSHOT_FOOTER_LEN
    );
}

#[test]
fn the_writer_refuses_keys_out_of_order_and_lsn_zero() {
    let mut writer = SnapshotWriter::new();
    writer.push(b"b", b"1").unwrap();
    assert_eq!(
        writer.push(b"b", b"2"),
        Err(SnapshotEncodeError::KeysNotIncreasing { index: 1 })
    );
    assert_eq!(
        writer.push(b"a", b"2"),
        Err(SnapshotEncodeError::KeysNotIncreasing { index: 1 })
    );
    writer.push(b"c", b"3").unwrap();
    let too_long = vec![0u8; MAX_SNAPSHOT_FIELD_BYTES + 1];
    assert_eq!(
        writer.push(b"d", &too_long),
        Err(SnapshotEncodeError::FieldTooLong {
            index: 2,
            len: too_long.len()
        })
    );
    assert_eq!(
        writer.finish(Lsn::ZERO, 0).unwrap_err(),
        SnapshotEncodeError::LsnZero
    );
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let bytes = encode(&items(12), 40, 7);
    for at in 0..bytes.len() {
        for flip in [0x01, 0x80] {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            assert!(
                decode_snapshot(&damaged).is_err(),
                "flip {flip:#x} at byte {at} of {} went unnoticed",
                bytes.len()
            );
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = encode(&items(12), 40, 7);
    for len in 0..bytes.len() {
        assert!(decode_snapshot(&bytes[..len]).is_err(), "cut to {len}");
        assert!(decode_snapshot(&bytes[bytes.len() - len..]).is_err());
    }
}

#[test]
fn each_damage_to_the_footer_is_named() {
    let bytes = encode(&items(3), 40, 7);
    let footer = bytes.len() - SNAPSHOT_FOOTER_LEN;
    assert_eq!(
        decode_snapshot(&bytes[..10]),
        Err(SnapshotError::Seal(SealError::TooShort { len: 10 }))
    );
    let mut magic = bytes.clone();
    magic[footer] = b'X';
    assert_eq!(
        decode_snapshot(&magic),
        Err(SnapshotError::Seal(SealError::BadMagic))
    );
    let mut crc = bytes.clone();
    crc[footer + 30] ^= 1;
    assert!(matches!(
        decode_snapshot(&crc),
        Err(SnapshotError::Seal(SealError::FooterCrcMismatch { .. }))
    ));
    let mut version = bytes.clone();
    reseal(&mut version, 8, &2u32.to_le_bytes());
    assert_eq!(
        decode_snapshot(&version),
        Err(SnapshotError::Seal(SealError::UnsupportedVersion(2)))
    );
    let mut body = bytes.clone();
    body[0] ^= 1;
    assert_eq!(
        decode_snapshot(&body),
        Err(SnapshotError::Seal(SealError::BodyHashMismatch))
    );
    let mut body_len = bytes.clone();
    reseal(&mut body_len, BODY_LEN_AT, &1u64.to_le_bytes());
    assert_eq!(
        decode_snapshot(&body_len),
        Err(SnapshotError::Seal(SealError::BodyLengthMismatch {
            footer: 1,
            actual: footer as u64
        }))
    );
    let mut lsn = bytes.clone();
    reseal(&mut lsn, LSN_AT, &0u64.to_le_bytes());
    assert_eq!(decode_snapshot(&lsn), Err(SnapshotError::LsnZero));
    let mut fewer = bytes.clone();
    reseal(&mut fewer, COUNT_AT, &2u64.to_le_bytes());
    assert_eq!(
        decode_snapshot(&fewer),
        Err(SnapshotError::ItemCountMismatch {
            footer: 2,
            actual: 3
        })
    );
    let mut more = bytes.clone();
    reseal(&mut more, COUNT_AT, &u64::MAX.to_le_bytes());
    assert_eq!(
        decode_snapshot(&more),
        Err(SnapshotError::ItemCountMismatch {
            footer: u64::MAX,
            actual: 3
        })
    );
    let mut digest = bytes.clone();
    reseal(&mut digest, DIGEST_AT, &[1, 0]);
    assert_eq!(decode_snapshot(&digest), Err(SnapshotError::DigestMismatch));
}

#[test]
fn a_consistent_footer_over_a_bad_body_is_rejected() {
    let good = items(3);
    let mut unsorted = good.clone();
    unsorted.swap(1, 2);
    assert_eq!(
        decode_snapshot(&sealed_over(&records(&unsorted), 3, &unsorted)),
        Err(SnapshotError::KeysNotIncreasing { index: 2 })
    );

    let mut torn = records(&good);
    torn.truncate(torn.len() - 1);
    assert!(matches!(
        decode_snapshot(&sealed_over(&torn, 3, &good)),
        Err(SnapshotError::RecordTruncated { index: 2, .. })
    ));

    // A length prefix claiming 4 GiB is refused before anything is read for it.
    let mut hostile = records(&good[..1]);
    hostile.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        decode_snapshot(&sealed_over(&hostile, 2, &good)),
        Err(SnapshotError::FieldTooLong {
            index: 1,
            len: u64::from(u32::MAX)
        })
    );

    let mut not_zstd = sealed_over(&records(&good), 3, &good);
    let body_len = not_zstd.len() - SNAPSHOT_FOOTER_LEN;
    not_zstd[..body_len].fill(0x55);
    let hash = *blake3::hash(&not_zstd[..body_len]).as_bytes();
    reseal(&mut not_zstd, BODY_HASH_AT, &hash);
    assert!(matches!(
        decode_snapshot(&not_zstd),
        Err(SnapshotError::Decompress(_))
    ));

    // The items decode but are not the state the footer's digest describes.
    let other = items(4);
    assert_eq!(
        decode_snapshot(&sealed_over(&records(&good), 3, &other)),
        Err(SnapshotError::DigestMismatch)
    );
}

#[test]
fn the_footer_alone_reads_without_the_body() {
    let bytes = encode(&items(5), 321, 99);
    let footer = &bytes[bytes.len() - SNAPSHOT_FOOTER_LEN..];
    let info = read_snapshot_footer(footer, bytes.len() as u64).unwrap();
    assert_eq!(
        (info.lsn, info.timestamp_ms, info.item_count),
        (Lsn(321), 99, 5)
    );
    assert_eq!(
        read_snapshot_footer(footer, bytes.len() as u64 + 1),
        Err(SnapshotError::Seal(SealError::BodyLengthMismatch {
            footer: (bytes.len() - SNAPSHOT_FOOTER_LEN) as u64,
            actual: (bytes.len() + 1 - SNAPSHOT_FOOTER_LEN) as u64
        }))
    );
}
