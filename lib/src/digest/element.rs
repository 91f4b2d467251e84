//! Element hashes of many items at once.
//!
//! An item's element hash is the blake3 XOF, in `derive_key` mode with ddb's context, of its
//! message `len(key) as u32 LE || key || item` (see `docs/formats.md`). Within one blake3 chunk
//! (1 KiB) the 64-byte blocks are compressed one after another, so a single item of about 1 KB
//! cannot use more than one SIMD lane of the CPU. Scans, rebuilds and applies hash many items,
//! though, so this module compresses the same chunk position of up to 16 different items side by
//! side with blake3's multi-input kernel (AVX-512, AVX2, SSE4.1 or NEON, chosen at run time),
//! then finishes each item's tree and XOF. The result is bit-for-bit the blake3 XOF: the tests
//! compare it with `blake3::Hasher` for every message length class.
//!
//! The multi-input kernel is blake3's `platform` module, which that crate exposes without a
//! stability promise; the workspace pins blake3 to one exact version for that reason, and the
//! tests here fail if an upgrade changes what it computes.

use blake3::IncrementCounter;
use blake3::platform::Platform;

use super::lthash::DIGEST_BYTES;
use super::xof::{RootNode, root_output};

/// The blake3 `derive_key` context that separates item hashing for digests from every other use
/// of blake3 in ddb. Part of the on-disk format: changing it changes every digest.
pub(super) const ITEM_CONTEXT: &str = "ddb 2026 state digest v1 item element";

const BLOCK_LEN: usize = 64;
const CHUNK_LEN: usize = 1024;
const BLOCKS_PER_CHUNK: usize = CHUNK_LEN / BLOCK_LEN;

// blake3's domain flags (from the blake3 specification).
const CHUNK_START: u8 = 1 << 0;
const CHUNK_END: u8 = 1 << 1;
const PARENT: u8 = 1 << 2;
const ROOT: u8 = 1 << 3;
const DERIVE_KEY_MATERIAL: u8 = 1 << 6;

/// Messages of more chunks than this are hashed alone by `blake3::Hasher`, which already
/// spreads a long message's chunks over the SIMD lanes.
const MAX_BATCHED_CHUNKS: usize = 4;

/// The message whose XOF is an item's element hash: `len(key) as u32 LE || key || item`,
/// appended to `out`.
pub(super) fn push_message(out: &mut Vec<u8>, key: &[u8], item: &[u8]) {
    out.extend_from_slice(&key_length(key));
    out.extend_from_slice(key);
    out.extend_from_slice(item);
}

/// The message's first four bytes: `len(key) as u32 LE`.
fn key_length(key: &[u8]) -> [u8; 4] {
    // Keys are bounded by DynamoDB's key limits (a few KB), far below 4 GiB.
    u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes()
}

/// The element hash of one item, one message at a time (the reference the batched path must
/// equal).
pub(super) fn element_xof(key: &[u8], item: &[u8], out: &mut [u8; DIGEST_BYTES]) {
    let mut hasher = blake3::Hasher::new_derive_key(ITEM_CONTEXT);
    hasher.update(&key_length(key));
    hasher.update(key);
    hasher.update(item);
    hasher.finalize_xof().fill(out);
}

/// A run of whole blocks at the start of one chunk of one message, compressed side by side
/// with the same run of other messages.
struct BlockRun {
    message: usize,
    chunk: usize,
    blocks: usize,
    /// `CHUNK_END` when the run ends its chunk, else 0 (the chunk's last block follows alone).
    end_flag: u8,
}

/// Hashes `messages` (each built by [`push_message`]) and calls `each(index, element_hash)` for
/// every one, in order.
pub(super) fn element_xofs(messages: &[&[u8]], mut each: impl FnMut(usize, &[u8; DIGEST_BYTES])) {
    let platform = Platform::detect();
    let key = context_key();
    let mut out = [0u8; DIGEST_BYTES];

    // 1. Whole-block runs of every chunk, grouped so one kernel call takes the same chunk
    //    position and run length of many messages.
    let mut runs = Vec::new();
    for (message, bytes) in messages.iter().enumerate() {
        let chunks = chunk_count(bytes.len());
        if chunks > MAX_BATCHED_CHUNKS {
            continue;
        }
        for chunk in 0..chunks {
            let len = chunk_len(bytes.len(), chunk);
            if chunk + 1 < chunks {
                runs.push(BlockRun {
                    message,
                    chunk,
                    blocks: BLOCKS_PER_CHUNK,
                    end_flag: CHUNK_END,
                });
            } else {
                let blocks = (len - 1) / BLOCK_LEN;
                if blocks > 0 {
                    runs.push(BlockRun {
                        message,
                        chunk,
                        blocks,
                        end_flag: 0,
                    });
                }
            }
        }
    }
    runs.sort_unstable_by_key(|run| (run.chunk, run.blocks, run.end_flag));
    // Chaining values per message and chunk: after the run (whole chunk, or up to its last block).
    let mut cvs = vec![[key; MAX_BATCHED_CHUNKS]; messages.len()];
    for group in
        runs.chunk_by(|a, b| (a.chunk, a.blocks, a.end_flag) == (b.chunk, b.blocks, b.end_flag))
    {
        let first = &group[0];
        let inputs: Vec<&[u8]> = group
            .iter()
            .map(|run| {
                let start = run.chunk * CHUNK_LEN;
                &messages[run.message][start..start + run.blocks * BLOCK_LEN]
            })
            .collect();
        let mut words = vec![0u8; group.len() * 32];
        hash_runs(
            &platform,
            &inputs,
            first.blocks,
            &key,
            first.chunk as u64,
            first.end_flag,
            &mut words,
        );
        for (run, cv) in group.iter().zip(words.chunks_exact(32)) {
            cvs[run.message][run.chunk] = words_of(cv);
        }
    }

    // 2. Each message's last block, its tree, and its XOF.
    for (message, bytes) in messages.iter().enumerate() {
        let chunks = chunk_count(bytes.len());
        if chunks > MAX_BATCHED_CHUNKS {
            let mut hasher = blake3::Hasher::new_derive_key(ITEM_CONTEXT);
            hasher.update(bytes);
            hasher.finalize_xof().fill(&mut out);
            each(message, &out);
            continue;
        }
        let last = chunks - 1;
        let len = chunk_len(bytes.len(), last);
        let whole = (len - 1) / BLOCK_LEN;
        let tail_start = last * CHUNK_LEN + whole * BLOCK_LEN;
        let tail = &bytes[tail_start..last * CHUNK_LEN + len];
        let mut block = [0u8; BLOCK_LEN];
        block[..tail.len()].copy_from_slice(tail);
        let block_len = u8::try_from(tail.len()).unwrap_or(BLOCK_LEN as u8);
        let mut flags = DERIVE_KEY_MATERIAL | CHUNK_END;
        if whole == 0 {
            flags |= CHUNK_START;
        }
        let root = if chunks == 1 {
            RootNode {
                cv: cvs[message][0],
                block,
                block_len,
                flags: flags | ROOT,
            }
        } else {
            let mut cv = cvs[message][last];
            platform.compress_in_place(&mut cv, &block, block_len, last as u64, flags);
            cvs[message][last] = cv;
            top_parent(&platform, &key, &cvs[message][..chunks])
        };
        root_output(&platform, &root, &mut out);
        each(message, &out);
    }
}

/// The blake3 tree above `cvs` (two to [`MAX_BATCHED_CHUNKS`] chunk chaining values): the
/// left subtree holds the largest power of two of chunks smaller than the total.
fn top_parent(platform: &Platform, key: &[u32; 8], cvs: &[[u32; 8]]) -> RootNode {
    let left = largest_power_of_two_below(cvs.len());
    let left_cv = subtree_cv(platform, key, &cvs[..left]);
    let right_cv = subtree_cv(platform, key, &cvs[left..]);
    RootNode {
        cv: *key,
        block: parent_block(&left_cv, &right_cv),
        block_len: BLOCK_LEN as u8,
        flags: DERIVE_KEY_MATERIAL | PARENT | ROOT,
    }
}

fn subtree_cv(platform: &Platform, key: &[u32; 8], cvs: &[[u32; 8]]) -> [u32; 8] {
    if let [only] = cvs {
        return *only;
    }
    let left = largest_power_of_two_below(cvs.len());
    let block = parent_block(
        &subtree_cv(platform, key, &cvs[..left]),
        &subtree_cv(platform, key, &cvs[left..]),
    );
    let mut cv = *key;
    platform.compress_in_place(
        &mut cv,
        &block,
        BLOCK_LEN as u8,
        0,
        DERIVE_KEY_MATERIAL | PARENT,
    );
    cv
}

fn largest_power_of_two_below(n: usize) -> usize {
    // n >= 2: the largest power of two strictly less than n.
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn parent_block(left: &[u32; 8], right: &[u32; 8]) -> [u8; BLOCK_LEN] {
    let mut block = [0u8; BLOCK_LEN];
    for (slot, word) in block
        .chunks_exact_mut(4)
        .zip(left.iter().chain(right.iter()))
    {
        slot.copy_from_slice(&word.to_le_bytes());
    }
    block
}

fn chunk_count(len: usize) -> usize {
    len.div_ceil(CHUNK_LEN).max(1)
}

fn chunk_len(len: usize, chunk: usize) -> usize {
    (len - chunk * CHUNK_LEN).min(CHUNK_LEN)
}

fn context_key() -> [u32; 8] {
    words_of(&blake3::hazmat::hash_derive_key_context(ITEM_CONTEXT))
}

fn words_of(bytes: &[u8]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (word, le) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes([le[0], le[1], le[2], le[3]]);
    }
    words
}

/// Compresses `blocks` whole blocks at the start of every input (all at chunk `counter`)
/// side by side, writing one 32-byte chaining value per input to `out`.
fn hash_runs(
    platform: &Platform,
    inputs: &[&[u8]],
    blocks: usize,
    key: &[u32; 8],
    counter: u64,
    end_flag: u8,
    out: &mut [u8],
) {
    // The kernel takes each input as an array of its exact length: one instance per run length.
    macro_rules! by_blocks {
        ($($n:literal),*) => {
            match blocks {
                $($n => run_kernel::<{ $n * BLOCK_LEN }>(platform, inputs, key, counter, end_flag, out),)*
                _ => unreachable!("a run is 1 to 16 blocks"),
            }
        };
    }
    by_blocks!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
}

fn run_kernel<const N: usize>(
    platform: &Platform,
    inputs: &[&[u8]],
    key: &[u32; 8],
    counter: u64,
    end_flag: u8,
    out: &mut [u8],
) {
    let arrays: Vec<&[u8; N]> = inputs
        .iter()
        .filter_map(|input| <&[u8; N]>::try_from(*input).ok())
        .collect();
    debug_assert_eq!(arrays.len(), inputs.len(), "every run is exactly N bytes");
    platform.hash_many(
        &arrays,
        key,
        counter,
        IncrementCounter::No,
        DERIVE_KEY_MATERIAL,
        CHUNK_START,
        end_flag,
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key_len: usize, item_len: usize, seed: u8) -> Vec<u8> {
        let key: Vec<u8> = (0..key_len).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let item: Vec<u8> = (0..item_len)
            .map(|i| (i as u8).wrapping_add(seed).rotate_left(3))
            .collect();
        let mut out = Vec::new();
        push_message(&mut out, &key, &item);
        out
    }

    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut hasher = blake3::Hasher::new_derive_key(ITEM_CONTEXT);
        hasher.update(bytes);
        let mut out = vec![0u8; DIGEST_BYTES];
        hasher.finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn batched_hashes_equal_blake3_at_every_length_class() {
        // Every boundary: inside a block, at block and chunk edges, one to five chunks (the
        // last beyond the batched path), mixed in one batch as a scan would see them.
        let mut lengths = Vec::new();
        for chunks in 0..5usize {
            for delta in [
                0usize, 1, 2, 59, 60, 63, 64, 65, 127, 128, 129, 500, 959, 960, 1019, 1020,
            ] {
                lengths.push(chunks * CHUNK_LEN + delta);
            }
        }
        let messages: Vec<Vec<u8>> = lengths
            .iter()
            .enumerate()
            .map(|(i, total)| {
                let key_len = (total.saturating_sub(4)).min(7 + i % 13);
                message(key_len, total.saturating_sub(4 + key_len), i as u8)
            })
            .collect();
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let mut seen = 0;
        element_xofs(&slices, |index, hash| {
            assert_eq!(
                hash.as_slice(),
                reference(slices[index]).as_slice(),
                "message of {} bytes",
                slices[index].len()
            );
            assert_eq!(index, seen);
            seen += 1;
        });
        assert_eq!(seen, slices.len());
    }

    #[test]
    fn one_message_alone_equals_the_single_item_path() {
        let key = b"table1#user0042".as_slice();
        let item = vec![0x5au8; 1024];
        let mut single = [0u8; DIGEST_BYTES];
        element_xof(key, &item, &mut single);
        let mut bytes = Vec::new();
        push_message(&mut bytes, key, &item);
        element_xofs(&[bytes.as_slice()], |_, hash| assert_eq!(hash, &single));
    }
}
