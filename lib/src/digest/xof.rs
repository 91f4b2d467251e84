//! The 2 KiB XOF of an element hash, read off its root node eight output blocks at a time.
//!
//! Every 64-byte block of a blake3 XOF is one compression of the same root node (chaining
//! value, message block, block length, flags) that differs only in its counter: block `t` is
//! compression `t`. An element hash is 32 such blocks. blake3 computes several at once only on
//! CPUs with AVX-512; with AVX2 or less it compresses them one after another, and on such a
//! machine the XOF was about 80% of hashing a 1 KB item (docs/benchmarks.md).
//!
//! On x86-64 with AVX2 but without AVX-512 this module computes eight output blocks side by
//! side, one per 32-bit lane: the state is held transposed (vector `i` is word `i` of eight
//! blocks), the message words and all but the counter are the same in every lane, and the
//! results are transposed back into byte order. The AVX2 instructions are reached through
//! `pulp`'s safe wrappers (the workspace forbids unsafe code); elsewhere blake3's own
//! `xof_many` runs. Both are bit for bit the blake3 XOF: the tests compare them for every block
//! length and flag set the element hashes use.

use blake3::platform::Platform;

use super::lthash::DIGEST_BYTES;

/// The node an element hash's XOF is read from: its message's only chunk's last block, or the
/// top parent of its chunks.
pub(super) struct RootNode {
    pub cv: [u32; 8],
    pub block: [u8; 64],
    pub block_len: u8,
    pub flags: u8,
}

/// Writes the first [`DIGEST_BYTES`] of `root`'s XOF to `out`.
pub(super) fn root_output(platform: &Platform, root: &RootNode, out: &mut [u8; DIGEST_BYTES]) {
    #[cfg(target_arch = "x86_64")]
    if !blake3_has_wide_xof()
        && let Some(simd) = pulp::x86::V3::try_new()
    {
        avx2::root_output(simd, root, out);
        return;
    }
    platform.xof_many(&root.cv, &root.block, root.block_len, 0, root.flags, out);
}

/// Whether blake3 computes XOF blocks sixteen at a time on this CPU (its AVX-512 kernel needs
/// AVX-512F and VL), which beats eight lanes of AVX2.
#[cfg(target_arch = "x86_64")]
fn blake3_has_wide_xof() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// blake3's initialisation vector and message schedule (from the blake3 specification).
#[cfg(target_arch = "x86_64")]
const IV: [u32; 4] = [0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A];
#[cfg(target_arch = "x86_64")]
const MESSAGE_PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/// Which message word each of a round's sixteen reads takes: round `r` reads the block permuted
/// `r` times, so `SCHEDULE[r][i] = SCHEDULE[r - 1][MESSAGE_PERMUTATION[i]]`.
#[cfg(target_arch = "x86_64")]
const SCHEDULE: [[usize; 16]; 7] = {
    let mut schedule = [[0; 16]; 7];
    let mut i = 0;
    while i < 16 {
        schedule[0][i] = i;
        i += 1;
    }
    let mut round = 1;
    while round < 7 {
        let mut i = 0;
        while i < 16 {
            schedule[round][i] = schedule[round - 1][MESSAGE_PERMUTATION[i]];
            i += 1;
        }
        round += 1;
    }
    schedule
};

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::__m256i;

    use pulp::x86::V3;

    use super::{DIGEST_BYTES, IV, RootNode, SCHEDULE};

    /// Output blocks computed side by side: one per 32-bit lane of a 256-bit register.
    const LANES: usize = 8;
    const BLOCK_BYTES: usize = 64;
    const GROUPS: usize = DIGEST_BYTES / (LANES * BLOCK_BYTES);
    const _: () = assert!(GROUPS * LANES * BLOCK_BYTES == DIGEST_BYTES);

    /// The work, handed to [`V3::vectorize`] so that it is compiled with AVX2 enabled. Every
    /// function it reaches is `#[inline(always)]`: one that is not inlined runs without AVX2
    /// and calls each intrinsic out of line (about 40 times slower, and the benchmark shows it).
    struct Job<'a> {
        simd: V3,
        root: &'a RootNode,
        out: &'a mut [u8; DIGEST_BYTES],
    }

    impl pulp::NullaryFnOnce for Job<'_> {
        type Output = ();

        #[inline(always)]
        fn call(self) {
            compute(self.simd, self.root, self.out);
        }
    }

    pub(super) fn root_output(simd: V3, root: &RootNode, out: &mut [u8; DIGEST_BYTES]) {
        simd.vectorize(Job { simd, root, out });
    }

    #[inline(always)]
    fn splat(simd: V3, word: u32) -> __m256i {
        simd.avx._mm256_set1_epi32(word as i32)
    }

    #[inline(always)]
    fn compute(simd: V3, root: &RootNode, out: &mut [u8; DIGEST_BYTES]) {
        let x = simd.avx2;
        // Byte shuffles that rotate every 32-bit lane right by 16 and by 8.
        let rot16: __m256i = pulp::cast([
            2u8, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11,
            8, 9, 14, 15, 12, 13,
        ]);
        let rot8: __m256i = pulp::cast([
            1u8, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10,
            11, 8, 13, 14, 15, 12,
        ]);
        let message: [__m256i; 16] = core::array::from_fn(|i| {
            let bytes = &root.block[i * 4..i * 4 + 4];
            splat(
                simd,
                u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            )
        });
        let cv = root.cv.map(|word| splat(simd, word));
        let g = |s: &mut [__m256i; 16], [a, b, c, d]: [usize; 4], mx, my| {
            quarter_round(simd, s, [a, b, c, d], mx, my, rot16, rot8);
        };

        // Every output block starts from the same state but for the counter (word 12), and
        // the first round's columns 1..4 never read word 12: compute them once for all blocks.
        let mut start = [splat(simd, 0); 16];
        start[..8].copy_from_slice(&cv);
        for (slot, word) in start[8..12].iter_mut().zip(IV) {
            *slot = splat(simd, word);
        }
        start[13] = splat(simd, 0); // the counter's high word: 32 blocks never carry into it
        start[14] = splat(simd, u32::from(root.block_len));
        start[15] = splat(simd, u32::from(root.flags));
        g(&mut start, [1, 5, 9, 13], message[2], message[3]);
        g(&mut start, [2, 6, 10, 14], message[4], message[5]);
        g(&mut start, [3, 7, 11, 15], message[6], message[7]);

        for (group, out) in out.chunks_exact_mut(LANES * BLOCK_BYTES).enumerate() {
            let first = (group * LANES) as u32;
            let mut s = start;
            // The counter's low word differs per lane.
            s[12] = pulp::cast(core::array::from_fn::<u32, LANES, _>(|lane| {
                first + lane as u32
            }));
            for (round, m) in SCHEDULE.iter().enumerate() {
                let m = |i: usize| message[m[i]];
                g(&mut s, [0, 4, 8, 12], m(0), m(1));
                if round > 0 {
                    g(&mut s, [1, 5, 9, 13], m(2), m(3));
                    g(&mut s, [2, 6, 10, 14], m(4), m(5));
                    g(&mut s, [3, 7, 11, 15], m(6), m(7));
                }
                g(&mut s, [0, 5, 10, 15], m(8), m(9));
                g(&mut s, [1, 6, 11, 12], m(10), m(11));
                g(&mut s, [2, 7, 8, 13], m(12), m(13));
                g(&mut s, [3, 4, 9, 14], m(14), m(15));
            }

            // Output words 0..8 are s[i] ^ s[i + 8]; words 8..16 are s[i + 8] ^ cv[i].
            let low = transpose(
                simd,
                core::array::from_fn(|i| x._mm256_xor_si256(s[i], s[i + 8])),
            );
            let high = transpose(
                simd,
                core::array::from_fn(|i| x._mm256_xor_si256(s[i + 8], cv[i])),
            );
            for ((block, low), high) in out.chunks_exact_mut(BLOCK_BYTES).zip(low).zip(high) {
                let low: [u8; 32] = pulp::cast(low);
                let high: [u8; 32] = pulp::cast(high);
                block[..32].copy_from_slice(&low);
                block[32..].copy_from_slice(&high);
            }
        }
    }

    /// blake3's G function on four state words of every lane.
    #[inline(always)]
    fn quarter_round(
        simd: V3,
        s: &mut [__m256i; 16],
        [a, b, c, d]: [usize; 4],
        mx: __m256i,
        my: __m256i,
        rot16: __m256i,
        rot8: __m256i,
    ) {
        let x = simd.avx2;
        s[a] = x._mm256_add_epi32(x._mm256_add_epi32(s[a], s[b]), mx);
        s[d] = x._mm256_shuffle_epi8(x._mm256_xor_si256(s[d], s[a]), rot16);
        s[c] = x._mm256_add_epi32(s[c], s[d]);
        let t = x._mm256_xor_si256(s[b], s[c]);
        s[b] = x._mm256_or_si256(x._mm256_srli_epi32::<12>(t), x._mm256_slli_epi32::<20>(t));
        s[a] = x._mm256_add_epi32(x._mm256_add_epi32(s[a], s[b]), my);
        s[d] = x._mm256_shuffle_epi8(x._mm256_xor_si256(s[d], s[a]), rot8);
        s[c] = x._mm256_add_epi32(s[c], s[d]);
        let t = x._mm256_xor_si256(s[b], s[c]);
        s[b] = x._mm256_or_si256(x._mm256_srli_epi32::<7>(t), x._mm256_slli_epi32::<25>(t));
    }

    /// Transposes an 8 × 8 matrix of 32-bit words: `rows[i]` holds word `i` of eight blocks;
    /// the result's vector `lane` holds words 0..8 of block `lane`.
    #[inline(always)]
    fn transpose(simd: V3, rows: [__m256i; 8]) -> [__m256i; 8] {
        let x = simd.avx2;
        // Pairs of rows interleaved by word, then by 64-bit pair; each 128-bit half then holds
        // four words of one block (blocks 0..4 in the low halves, 4..8 in the high halves).
        let t: [__m256i; 8] = core::array::from_fn(|i| {
            let (r0, r1) = (rows[(i / 2) * 2], rows[(i / 2) * 2 + 1]);
            if i % 2 == 0 {
                x._mm256_unpacklo_epi32(r0, r1)
            } else {
                x._mm256_unpackhi_epi32(r0, r1)
            }
        });
        let u: [__m256i; 8] = core::array::from_fn(|i| {
            // u[0..4] from rows 0..4 (t[0..4]), u[4..8] from rows 4..8 (t[4..8]).
            let base = (i / 4) * 4;
            let (lo, hi) = (t[base + (i % 4) / 2], t[base + 2 + (i % 4) / 2]);
            if i % 2 == 0 {
                x._mm256_unpacklo_epi64(lo, hi)
            } else {
                x._mm256_unpackhi_epi64(lo, hi)
            }
        });
        core::array::from_fn(|lane| {
            let (a, b) = (u[lane % 4], u[4 + lane % 4]);
            if lane < 4 {
                x._mm256_permute2x128_si256::<0x20>(a, b)
            } else {
                x._mm256_permute2x128_si256::<0x31>(a, b)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK_START: u8 = 1 << 0;
    const CHUNK_END: u8 = 1 << 1;
    const PARENT: u8 = 1 << 2;
    const ROOT: u8 = 1 << 3;
    const DERIVE_KEY_MATERIAL: u8 = 1 << 6;

    #[test]
    fn root_output_equals_blake3_for_every_block_length_and_root_kind() {
        let platform = Platform::detect();
        let mut rng = fastrand::Rng::with_seed(0x0dd6);
        // The root of a one-chunk message (its last block: 1..=64 bytes, first block or not)
        // and of a longer one (a parent node, always 64 bytes).
        let kinds = [
            DERIVE_KEY_MATERIAL | CHUNK_START | CHUNK_END | ROOT,
            DERIVE_KEY_MATERIAL | CHUNK_END | ROOT,
            DERIVE_KEY_MATERIAL | PARENT | ROOT,
        ];
        for flags in kinds {
            for block_len in 0..=64u8 {
                let mut block = [0u8; 64];
                rng.fill(&mut block[..usize::from(block_len)]);
                let root = RootNode {
                    cv: core::array::from_fn(|_| rng.u32(..)),
                    block,
                    block_len,
                    flags,
                };
                let mut expected = [0u8; DIGEST_BYTES];
                platform.xof_many(&root.cv, &root.block, block_len, 0, flags, &mut expected);
                let mut actual = [0u8; DIGEST_BYTES];
                root_output(&platform, &root, &mut actual);
                assert_eq!(
                    actual.as_slice(),
                    expected.as_slice(),
                    "block_len {block_len}, flags {flags:#x}"
                );
            }
        }
    }

    #[test]
    fn root_output_equals_the_blake3_hasher_for_a_whole_message() {
        // The same as above, end to end: one short message whose root is its only block.
        let message = b"\x05\x00\x00\x00key01item";
        let key = blake3::hazmat::hash_derive_key_context("ddb xof test");
        let mut hasher = blake3::Hasher::new_derive_key("ddb xof test");
        hasher.update(message);
        let mut expected = [0u8; DIGEST_BYTES];
        hasher.finalize_xof().fill(&mut expected);

        let mut block = [0u8; 64];
        block[..message.len()].copy_from_slice(message);
        let root = RootNode {
            cv: core::array::from_fn(|i| {
                u32::from_le_bytes([key[i * 4], key[i * 4 + 1], key[i * 4 + 2], key[i * 4 + 3]])
            }),
            block,
            block_len: message.len() as u8,
            flags: DERIVE_KEY_MATERIAL | CHUNK_START | CHUNK_END | ROOT,
        };
        let mut actual = [0u8; DIGEST_BYTES];
        root_output(&Platform::detect(), &root, &mut actual);
        assert_eq!(actual.as_slice(), expected.as_slice());
    }
}
