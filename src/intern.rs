//! Interning: the hash of a scope token, computed once per token while the
//! scope parameter is scanned, and the table that maps a token to its id in
//! an API with that hash. A decision hashes each token once and compares
//! integers; it never hashes the same token twice.

/// The multiplier of the hash (the golden ratio in 64 bits: odd, and its bits
/// are well spread).
const K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The high and low halves of the 128-bit product, folded together: one
/// multiplication that mixes every input bit into every output bit.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    // Truncations on purpose: the two halves of the product.
    (product as u64) ^ ((product >> 64) as u64)
}

/// Up to 8 bytes as a little-endian word (missing bytes are zero).
///
/// A short slice is read as two overlapping halves (or three bytes) whose
/// overlap holds the same bytes, so OR-ing them gives the zero-padded word
/// without a byte loop, which compiles to a call to `memcpy`: most scope
/// tokens and role names end in a partial word.
#[inline]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
    let half = |from: usize| {
        let four = bytes
            .get(from..from + 4)
            .and_then(|four| <[u8; 4]>::try_from(four).ok());
        u64::from(four.map_or(0, u32::from_le_bytes))
    };
    match len {
        8.. => bytes
            .get(..8)
            .and_then(|eight| <[u8; 8]>::try_from(eight).ok())
            .map_or(0, u64::from_le_bytes),
        4..=7 => half(0) | (half(len - 4) << (8 * (len - 4))),
        1..=3 => at(0) | (at(len / 2) << (8 * (len / 2))) | (at(len - 1) << (8 * (len - 1))),
        0 => 0,
    }
}

/// The hash of `token` under `seed`: 16 bytes at a time, each pair of words
/// folded in one multiplication (a token longer than 16 bytes that is not a
/// whole number of blocks ends with an overlapping read of its last 16),
/// its length mixed in first; up to 8 bytes take one multiplication by `K`.
///
/// The seed is random per policy, so the layout of a policy's tables cannot
/// be predicted from its scope names, and the second word of a block is
/// mixed with a key derived from it: a block whose words cancel the keys
/// cannot be written without knowing the seed. A request can only look
/// tokens up, so it cannot lengthen a table's probe sequences either way.
#[inline]
pub(crate) fn token_hash(seed: u64, token: &[u8]) -> u64 {
    let len = token.len();
    let hash = seed ^ (len as u64).wrapping_mul(K);
    if len <= 8 {
        return fold(hash ^ word(token), K);
    }
    let key = seed.rotate_left(32) ^ K;
    let block = |hash: u64, block: &[u8]| {
        let (low, high) = block.split_at(8.min(block.len()));
        fold(hash ^ word(low), key ^ word(high))
    };
    if len <= 16 {
        // Two overlapping words: the first 8 bytes and the last 8.
        let last = token.get(len - 8..).unwrap_or_default();
        return fold(hash ^ word(token), key ^ word(last));
    }
    let mut blocks = token.chunks_exact(16);
    let mut hash = hash;
    for whole in &mut blocks {
        hash = block(hash, whole);
    }
    if !blocks.remainder().is_empty() {
        hash = block(hash, token.get(len - 16..).unwrap_or_default());
    }
    hash
}

/// A random seed for one policy's tables.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0x5C0E_u64)
}

/// Whether two byte strings are equal, compared 8 bytes at a time inline:
/// names are short, and a call to `memcmp` costs more than comparing them.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < 8 {
        return word(a) == word(b);
    }
    let (mut left, mut right) = (a.chunks_exact(8), b.chunks_exact(8));
    let whole = left.by_ref().zip(right.by_ref()).all(|(x, y)| word(x) == word(y));
    // The last 8 bytes, overlapping the whole words already compared.
    let last = |bytes: &[u8]| word(bytes.get(bytes.len() - 8..).unwrap_or_default());
    whole && (left.remainder().is_empty() || last(a) == last(b))
}

/// A map from token hashes to values (`0..values`), by open addressing with
/// linear probing, at most half full. A slot holds a value and the high half
/// of its hash, so most misses end without looking further; the caller
/// confirms a candidate by comparing the token itself.
#[derive(Clone, Default)]
pub(crate) struct TokenTable {
    // INVARIANT: a power of two in length (or empty); each slot is 0 for
    // empty, or the high 32 bits of the hash above value + 1.
    slots: Box<[u64]>,
    values: usize,
}

// By hand: the hashes depend on a random seed, and two policies built from
// one document must print the same.
impl std::fmt::Debug for TokenTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenTable")
            .field("values", &self.values)
            .finish()
    }
}

/// The random seed of one policy's token hashes; its `Debug` hides the value
/// (two policies built from one document print the same).
#[derive(Clone, Copy)]
pub(crate) struct Seed(pub(crate) u64);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl TokenTable {
    /// A table of `hashes`: value `v` has hash `hashes[v]`. Values beyond
    /// `u32::MAX - 1` are left out (a policy that large does not fit in memory).
    pub(crate) fn new(hashes: impl ExactSizeIterator<Item = u64>) -> Self {
        let values = hashes.len();
        let size = (values * 2).next_power_of_two().max(8);
        let mut slots = vec![0u64; size].into_boxed_slice();
        let mask = size - 1;
        for (value, hash) in hashes.enumerate() {
            let Ok(stored) = u32::try_from(value + 1) else {
                break;
            };
            let mut at = hash as usize & mask;
            while let Some(slot) = slots.get_mut(at) {
                if *slot == 0 {
                    *slot = (hash & TAG) | u64::from(stored);
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        TokenTable { slots, values }
    }

    /// The value whose hash is `hash` and for which `is(value)` holds.
    #[inline]
    pub(crate) fn get(&self, hash: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = hash as usize & mask;
        // INVARIANT: at most half full, so the probe meets an empty slot.
        while let Some(&slot) = self.slots.get(at) {
            if slot == 0 {
                return None;
            }
            if slot & TAG == hash & TAG {
                let value = (slot & !TAG) as usize - 1;
                if is(value) {
                    return Some(value);
                }
            }
            at = (at + 1) & mask;
        }
        None
    }
}

/// The high half of a hash, kept in a slot beside its value.
const TAG: u64 = 0xFFFF_FFFF_0000_0000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_is_its_bytes_zero_padded_at_every_length() {
        let bytes: Vec<u8> = (1..=9u8).map(|b| b.wrapping_mul(37) | 0x80).collect();
        for len in 0..=9 {
            let slice = &bytes[..len];
            let mut padded = [0u8; 8];
            for (slot, byte) in padded.iter_mut().zip(slice) {
                *slot = *byte;
            }
            assert_eq!(word(slice), u64::from_le_bytes(padded), "{len} bytes");
        }
    }

    #[test]
    fn the_hash_depends_on_every_byte_the_length_and_the_seed() {
        let tokens: [&[u8]; 15] = [
            b"",
            b"a",
            b"b",
            b"ab",
            b"ba",
            b"read:events",
            b"read:eventz",
            b"zead:events",
            b"0123456789abcdef",
            b"a\0",
            b"read:appointments",
            b"read:appointmentz",
            b"zead:appointments",
            b"0123456789abcdef0123456789abcdef",
            b"0123456789abcdef0123456789abcdeg",
        ];
        for (i, a) in tokens.iter().enumerate() {
            for (j, b) in tokens.iter().enumerate() {
                assert_eq!(token_hash(7, a) == token_hash(7, b), i == j, "{a:?} {b:?}");
            }
            assert_ne!(token_hash(7, a), token_hash(8, a), "the seed counts");
        }
    }

    #[test]
    fn every_byte_of_a_token_of_any_length_counts_in_its_hash() {
        for len in 1..=40 {
            let base = vec![b'a'; len];
            for at in 0..len {
                let mut changed = base.clone();
                if let Some(byte) = changed.get_mut(at) {
                    *byte = b'b';
                }
                assert_ne!(
                    token_hash(7, &base),
                    token_hash(7, &changed),
                    "byte {at} of {len}"
                );
            }
        }
    }

    #[test]
    fn a_table_finds_each_value_and_nothing_else() {
        let names: Vec<String> = (0..1_000).map(|n| format!("scope:{n}")).collect();
        let hash = |name: &str| token_hash(42, name.as_bytes());
        let table = TokenTable::new(names.iter().map(|n| hash(n)));
        for (value, name) in names.iter().enumerate() {
            assert_eq!(table.get(hash(name), |v| names.get(v) == Some(name)), Some(value));
        }
        assert_eq!(table.get(hash("scope:1000"), |_| true), None);
        assert_eq!(table.get(hash("scope:5"), |_| false), None, "the caller confirms");
        let empty = TokenTable::new(std::iter::empty());
        assert_eq!(empty.get(hash("x"), |_| true), None);
    }

    #[test]
    fn same_bytes_is_equality() {
        let texts: [&[u8]; 10] = [
            b"",
            b"a",
            b"b",
            b"abcdefg",
            b"abcdefh",
            b"abcdefgh",
            b"abcdefgi",
            b"abcdefghabcdefghx",
            b"abcdefghabcdefghy",
            b"xbcdefghabcdefghx",
        ];
        for a in texts {
            for b in texts {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_the_caller() {
        let table = TokenTable::new([5, 5, 5].into_iter());
        for value in 0..3 {
            assert_eq!(table.get(5, |v| v == value), Some(value));
        }
    }
}
