//! Scope tokens (RFC 6749 §3.3) and the request's `scope` parameter.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;

use crate::intern;
use crate::work::work;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

/// The scopes OpenID Connect reserves. They belong to no API, and no API may
/// define them (OpenID Connect Core §5.4, §11).
pub const OIDC_SCOPES: [&str; 6] = ["openid", "profile", "email", "address", "phone", "offline_access"];

/// The OIDC scope that asks for a refresh token (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Whether `token` is one of the reserved OIDC scopes of [`OIDC_SCOPES`].
pub fn is_oidc_scope(token: &str) -> bool {
    OIDC_SCOPES.contains(&token)
}

/// A short description of an OIDC scope for the consent prompt, or `None`
/// for a token that is not an OIDC scope.
pub(crate) fn oidc_description(token: &str) -> Option<&'static str> {
    Some(match token {
        "openid" => "Sign you in with your account",
        "profile" => "Read your basic profile: name, picture and locale",
        "email" => "Read your email address",
        "address" => "Read your postal address",
        "phone" => "Read your phone number",
        "offline_access" => "Stay connected when you are not using the app",
        _ => return None,
    })
}

// RFC 6749 appendix A: NQCHAR = %x21 / %x23-5B / %x5D-7E, inclusive (`[` and `~` are valid).
pub(crate) const fn is_scope_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Why a scope token or a scope parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// The token is empty.
    #[error("empty scope token")]
    Empty,
    /// A byte outside RFC 6749's NQCHAR (and, in a parameter, other than a space).
    #[error("byte 0x{byte:02x} at offset {at} is not allowed in a scope")]
    InvalidByte {
        /// Offset of the first offending byte.
        at: usize,
        /// The offending byte.
        byte: u8,
    },
    /// The raw parameter is longer than `max_scope_length` bytes.
    #[error("scope parameter is {len} bytes long, over the limit of {max}")]
    TooLong {
        /// Length of the parameter, in bytes.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The parameter has more than `max_scope_tokens` tokens (before de-duplication).
    #[error("scope parameter has more than {max} tokens")]
    TooManyTokens {
        /// The limit in force.
        max: usize,
    },
}

/// One scope token, such as `create:events` (RFC 6749 §3.3).
///
/// Case-sensitive and validated when it is built: one or more bytes of
/// `%x21 / %x23-5B / %x5D-7E`.
///
/// ```
/// use scope_policy::Scope;
/// let scope: Scope = "read:appointments".parse()?;
/// assert_eq!(scope, *"read:appointments");
/// assert!(Scope::new("read appointments").is_err());
/// # Ok::<(), scope_policy::ScopeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(Box<str>);

impl Scope {
    /// Validates `token` as one scope token.
    ///
    /// # Errors
    ///
    /// [`ScopeError::Empty`] for `""`, [`ScopeError::InvalidByte`] for a space,
    /// a quote, a backslash, a control byte or any non-ASCII byte.
    pub fn new(token: &str) -> Result<Self, ScopeError> {
        check_token(token)?;
        Ok(Scope(token.into()))
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is one of the reserved OIDC scopes.
    pub fn is_oidc(&self) -> bool {
        is_oidc_scope(&self.0)
    }
}

/// Checks that `token` is one valid scope token.
pub(crate) fn check_token(token: &str) -> Result<(), ScopeError> {
    if token.is_empty() {
        return Err(ScopeError::Empty);
    }
    match token.bytes().enumerate().find(|&(_, b)| !is_scope_byte(b)) {
        Some((at, byte)) => Err(ScopeError::InvalidByte { at, byte }),
        None => Ok(()),
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::new(s)
    }
}

impl TryFrom<&str> for Scope {
    type Error = ScopeError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Scope::new(s)
    }
}

impl TryFrom<String> for Scope {
    type Error = ScopeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        check_token(&s)?;
        Ok(Scope(s.into_boxed_str()))
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// Sound: the derived Eq/Ord/Hash compare only the text, exactly as `str` does.
impl Borrow<str> for Scope {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Scope {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Scope {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A `String`, never `&str`: a borrowed string fails on escaped JSON and on readers.
        let text = String::deserialize(deserializer)?;
        Scope::try_from(text).map_err(serde::de::Error::custom)
    }
}

/// The limits on a raw scope parameter, from the policy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Longest raw parameter accepted, in bytes.
    pub max_scope_length: usize,
    /// Most tokens accepted, counted before de-duplication.
    pub max_scope_tokens: usize,
}

impl Limits {
    /// The default maximum length of a scope parameter: 4096 bytes.
    pub const DEFAULT_MAX_SCOPE_LENGTH: usize = 4096;
    /// The default maximum number of tokens in a scope parameter: 128.
    pub const DEFAULT_MAX_SCOPE_TOKENS: usize = 128;

    /// Limits of `max_scope_length` bytes and `max_scope_tokens` tokens.
    pub const fn new(max_scope_length: usize, max_scope_tokens: usize) -> Self {
        Limits {
            max_scope_length,
            max_scope_tokens,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scope_length: Self::DEFAULT_MAX_SCOPE_LENGTH,
            max_scope_tokens: Self::DEFAULT_MAX_SCOPE_TOKENS,
        }
    }
}

/// Inline capacity of a parsed parameter: a typical request needs no heap.
pub(crate) const INLINE_TOKENS: usize = 16;

/// How many token comparisons a membership scan may make in all before a
/// hash set takes over. Under it a scan is as fast or faster (a comparison
/// costs about a nanosecond, a SipHash insert or lookup about thirty) and
/// needs no heap; over it, a hash set keeps hostile sizes linear: limits
/// raised by the operator, long consent records. At 16,384 a parameter within
/// the default limit of 128 tokens is always scanned, and no scan costs more
/// than some 20 µs (BENCHMARKS.md has the measurements).
pub(crate) const SCAN_BUDGET: usize = 16_384;

/// Whether `probes` scans of `candidates` tokens each stay within [`SCAN_BUDGET`].
pub(crate) fn scan_fits(probes: usize, candidates: usize) -> bool {
    probes.saturating_mul(candidates) <= SCAN_BUDGET
}

/// A parsed `scope` parameter: its distinct tokens in first-appearance order,
/// borrowed from the raw text.
///
/// ```
/// use scope_policy::{Limits, ScopeParam};
/// let param = ScopeParam::parse("  openid  read:x openid ", Limits::default())?;
/// assert_eq!(param.tokens(), ["openid", "read:x"]);
/// # Ok::<(), scope_policy::ScopeError>(())
/// ```
#[derive(Clone, Default)]
pub struct ScopeParam<'a> {
    // INVARIANT: distinct, valid tokens, in first-appearance order.
    tokens: SmallVec<[&'a str; INLINE_TOKENS]>,
}

impl fmt::Debug for ScopeParam<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ScopeParam").field(&self.tokens).finish()
    }
}

impl PartialEq for ScopeParam<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens
    }
}

impl Eq for ScopeParam<'_> {}

impl<'a> ScopeParam<'a> {
    /// Parses a raw scope parameter (RFC 6749 §3.3).
    ///
    /// Runs of spaces and leading or trailing spaces are tolerated; a repeated
    /// token counts once, at its first position. The limits are checked before
    /// any other work.
    ///
    /// # Errors
    ///
    /// [`ScopeError::TooLong`] over `max_scope_length` bytes,
    /// [`ScopeError::InvalidByte`] for any byte that is neither a space nor
    /// NQCHAR (TAB, CR, LF, `"`, `\`, DEL, non-ASCII), and
    /// [`ScopeError::TooManyTokens`] over `max_scope_tokens` tokens.
    pub fn parse(raw: &'a str, limits: Limits) -> Result<Self, ScopeError> {
        let parsed = Parsed::parse_seeded(raw, limits, 0)?;
        Ok(ScopeParam {
            tokens: parsed.tokens().iter().map(|token| token.text).collect(),
        })
    }

    /// The distinct tokens, in first-appearance order.
    pub fn tokens(&self) -> &[&'a str] {
        &self.tokens
    }

    /// Whether the parameter named no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `token` is one of the parameter's tokens (a scan: linear in
    /// the token count).
    pub fn contains(&self, token: &str) -> bool {
        work(self.tokens.len());
        self.tokens.iter().any(|kept| same_token(kept, token))
    }
}

/// A token of a parsed scope parameter, with its hash under the policy's seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub(crate) text: &'a str,
    pub(crate) hash: u64,
}

/// A parsed `scope` parameter as the decision reads it: the distinct tokens
/// in first-appearance order, each beside its hash, in one list (one push a
/// token, one list to walk). [`ScopeParam`] is its public view.
#[derive(Clone, Default)]
pub(crate) struct Parsed<'a> {
    // INVARIANT: distinct, valid tokens, in first-appearance order, each
    // hash `token_hash(seed, text)`.
    tokens: SmallVec<[Token<'a>; INLINE_TOKENS]>,
    seed: u64,
}

/// How many tokens de-duplication scans (by hash, then text, when the filter
/// says a token may have been kept) before it indexes them in a table: 32
/// tokens make at most 496 integer comparisons, cheaper than a table;
/// beyond, a table keeps it linear.
const SCAN_DISTINCT: usize = 32;

impl<'a> Parsed<'a> {
    /// As [`ScopeParam::parse`], hashing each token under a policy's seed.
    ///
    /// Two passes over the text: validation in blocks the compiler
    /// vectorizes, then a split 8 bytes at a time, whose spaces a few integer
    /// operations find exactly. Each token is hashed once, for
    /// de-duplication here and for its lookup in the API later; a filter of
    /// the kept tokens' hashes lets most tokens through without a scan. The
    /// list that outgrows its inline room is sized once, from the tokens left.
    pub(crate) fn parse_seeded(raw: &'a str, limits: Limits, seed: u64) -> Result<Self, ScopeError> {
        let mut parsed = Parsed::default();
        parsed.parse_into(raw, limits, seed)?;
        Ok(parsed)
    }

    /// Parses `raw` into this (empty) parameter, in place: the decision keeps
    /// its parameters where they are instead of moving them around.
    pub(crate) fn parse_into(&mut self, raw: &'a str, limits: Limits, seed: u64) -> Result<(), ScopeError> {
        if raw.len() > limits.max_scope_length {
            return Err(ScopeError::TooLong {
                len: raw.len(),
                max: limits.max_scope_length,
            });
        }
        self.seed = seed;
        let mut scan = Scan {
            raw,
            param: self,
            limits,
            count: 0,
            seen: [0; 4],
            index: None,
        };
        let bytes = raw.as_bytes();
        if !all_scope_bytes(bytes) {
            return Err(first_invalid(bytes));
        }
        let mut start = 0;
        let mut chunks = bytes.chunks_exact(8);
        let mut base = 0;
        for chunk in &mut chunks {
            start = scan.split(intern::word(chunk), base, start);
            base += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Padded with spaces: they end the last token and are never read as text.
            let word = intern::word(rest) | (SPACES << (8 * rest.len()));
            start = scan.split(word, base, start);
        }
        if start < raw.len() {
            scan.token(start, raw.len());
        }
        if scan.count > limits.max_scope_tokens {
            return Err(ScopeError::TooManyTokens {
                max: limits.max_scope_tokens,
            });
        }
        Ok(())
    }

    /// The distinct tokens and their hashes, in first-appearance order.
    pub(crate) fn tokens(&self) -> &[Token<'a>] {
        &self.tokens
    }

    /// Whether the parameter named no token.
    pub(crate) fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether `token` is one of the parameter's tokens (a scan of their
    /// hashes: linear in the token count).
    pub(crate) fn contains(&self, token: &str) -> bool {
        self.position(token, intern::token_hash(self.seed, token.as_bytes()))
            .is_some()
    }

    /// Where `token`, whose hash is `hash`, is among the tokens.
    fn position(&self, token: &str, hash: u64) -> Option<usize> {
        work(self.tokens.len()); // at most: one step a candidate
        self.tokens
            .iter()
            .position(|kept| kept.hash == hash && same_token(kept.text, token))
    }

    /// The first token that is not one of `other`'s, if any. Both must have
    /// been parsed with the same seed.
    ///
    /// A scan of `other`'s hashes per token within [`SCAN_BUDGET`]
    /// comparisons, a hash set of `other`'s tokens beyond: linear in both lengths.
    pub(crate) fn first_not_in(&self, other: &Parsed<'_>) -> Option<&'a str> {
        let mut tokens = self.tokens.iter();
        if scan_fits(self.tokens.len(), other.tokens.len()) {
            return tokens
                .find(|token| other.position(token.text, token.hash).is_none())
                .map(|token| token.text);
        }
        let theirs: HashSet<&str> = other
            .tokens
            .iter()
            .map(|token| token.text)
            .inspect(|_| work(1))
            .collect();
        tokens
            .inspect(|_| work(1))
            .find(|token| !theirs.contains(token.text))
            .map(|token| token.text)
    }
}

/// `0x20` in every byte.
const SPACES: u64 = 0x2020_2020_2020_2020;
/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
const HIGHS: u64 = 0x8080_8080_8080_8080;
/// The low seven bits of every byte.
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// Nonzero when some byte of `word` is neither a space nor NQCHAR: below
/// `0x20`, `"`, `\`, or `0x7F` and above (RFC 6749 appendix A).
///
/// Exact for "is there any", not for where: a byte that is zero after the
/// XOR (or below `0x20`) borrows in the subtraction and sets its high bit,
/// which `!word` keeps because the byte is ASCII; with no such byte, no
/// subtraction borrows and a high bit survives only where `word` has its own,
/// which `!word` clears. A borrow can flag a valid byte too, but only above a
/// byte that was flagged rightly, so the word is judged right either way.
#[inline]
fn outside_scope_syntax(word: u64) -> u64 {
    let below = word.wrapping_sub(ONES * 0x20);
    let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
    let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    // 0x7F and above: adding 1 reaches the high bit, or it is already set.
    let above = word.wrapping_add(ONES) | word;
    ((below | quote | backslash) & !word | above) & HIGHS
}

/// Whether every byte is a space or NQCHAR (RFC 6749 appendix A), before
/// the text is split. Validation may read a byte twice, so the text is read
/// in whole blocks: 32 bytes at a time (a loop with no branch, which the
/// compiler vectorizes) and a last block that overlaps the one before; text
/// shorter than a block is read a word at a time, the last word overlapping
/// too, or padded with spaces when the text is shorter than a word.
fn all_scope_bytes(bytes: &[u8]) -> bool {
    const BLOCK: usize = 32;
    let len = bytes.len();
    if len >= BLOCK {
        let (whole, last) = (len - len % BLOCK, len - BLOCK);
        let head = bytes.get(..whole).unwrap_or_default();
        let last = bytes
            .get(last..)
            .and_then(|last| <&[u8; BLOCK]>::try_from(last).ok());
        return (bytes_outside(head) | last.map_or(0, |last| bytes_outside(last))) == 0;
    }
    if len < 8 {
        return outside_scope_syntax(intern::word(bytes) | (SPACES << (8 * len))) == 0;
    }
    let last = intern::word(bytes.get(len - 8..).unwrap_or_default());
    let words = bytes.chunks_exact(8).map(intern::word);
    words.fold(outside_scope_syntax(last), |found, word| {
        found | outside_scope_syntax(word)
    }) == 0
}

/// Nonzero when some byte is neither a space nor NQCHAR: the rule of
/// [`is_scope_byte`] written as range arithmetic, a branch-free loop the
/// compiler vectorizes (written with `is_scope_byte`, the decision took about
/// 50 instructions more). The byte-at-every-position test pins them together.
#[inline]
fn bytes_outside(bytes: &[u8]) -> u8 {
    let outside = |byte: u8| {
        // 0x20 ..= 0x7E, but for `"` and `\`.
        let printable = byte.wrapping_sub(0x20) < 0x5F;
        u8::from(!printable | (byte == b'"') | (byte == b'\\'))
    };
    bytes.iter().fold(0, |found, &byte| found | outside(byte))
}

/// The high bit of each space of a `word` whose bytes are all spaces or
/// NQCHAR ([`all_scope_bytes`]), exactly: after the XOR a space is 0 and
/// every other byte is in `0x01..=0x7F`, so adding `0x7F` sets the high bit
/// of every byte but the spaces, and no byte carries into the next.
#[inline]
fn spaces_of_valid(word: u64) -> u64 {
    !((word ^ SPACES).wrapping_add(LOW7)) & HIGHS
}

/// The spaces in `bytes`, which need not be valid: a word at a time.
fn count_spaces(bytes: &[u8]) -> usize {
    let mut chunks = bytes.chunks_exact(8);
    let mut spaces = 0;
    for chunk in &mut chunks {
        spaces += bytes_equal(intern::word(chunk), b' ').count_ones() as usize;
    }
    spaces + chunks.remainder().iter().filter(|&&byte| byte == b' ').count()
}

/// The high bit of each byte of `word` that equals `byte`, exactly (no borrow
/// crosses bytes).
#[inline]
fn bytes_equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// The first byte that is neither a space nor NQCHAR, as the error.
#[cold]
fn first_invalid(bytes: &[u8]) -> ScopeError {
    let found = bytes
        .iter()
        .enumerate()
        .find(|&(_, &b)| b != b' ' && !is_scope_byte(b));
    match found {
        Some((at, &byte)) => ScopeError::InvalidByte { at, byte },
        // INVARIANT: the block and word tests are exact, so text they flag
        // holds such a byte.
        None => ScopeError::InvalidByte { at: 0, byte: 0 },
    }
}

/// The state of one scan: the parameter so far, the tokens counted before
/// de-duplication, a filter of the kept tokens' hashes, and, beyond
/// [`SCAN_DISTINCT`] tokens, an index of them.
struct Scan<'s, 'a> {
    raw: &'a str,
    param: &'s mut Parsed<'a>,
    limits: Limits,
    count: usize,
    // One bit for each kept token's top 8 hash bits: a token whose bit is
    // clear is new without a scan (most are, in a list of distinct tokens).
    seen: [u64; 4],
    index: Option<Index>,
}

/// The positions of the kept tokens by their hash: open addressing, linear
/// probing, at most half full, made once with room for every token left.
/// The hashes are seeded per policy, so a request cannot aim its tokens at
/// one slot; if it could, the cost would still be bounded by the limits.
struct Index {
    // INVARIANT: a power of two in length; 0 is empty, else a position + 1.
    slots: Vec<u32>,
    shift: u32,
}

impl Index {
    fn with_room(tokens: usize) -> Self {
        let size = (tokens * 2).next_power_of_two().max(64);
        Index {
            slots: vec![0; size],
            shift: 64 - size.trailing_zeros(),
        }
    }

    /// Adds the token at `position` unless an equal one is indexed; whether it was new.
    fn insert(&mut self, param: &Parsed<'_>, token: &str, hash: u64, position: usize) -> bool {
        let mask = self.slots.len() - 1;
        let mut at = (hash >> self.shift) as usize;
        while let Some(slot) = self.slots.get_mut(at) {
            work(1);
            let Some(kept) = slot.checked_sub(1) else {
                *slot = u32::try_from(position + 1).unwrap_or(u32::MAX);
                return true;
            };
            let kept = kept as usize;
            if param
                .tokens
                .get(kept)
                .is_some_and(|k| k.hash == hash && same_token(k.text, token))
            {
                return false;
            }
            at = (at + 1) & mask;
        }
        true
    }
}

impl<'a> Scan<'_, 'a> {
    /// Cuts the tokens that the spaces of `word` (at `base`) end; returns
    /// where the next token starts. `word` holds only spaces and NQCHAR.
    #[inline]
    fn split(&mut self, word: u64, base: usize, mut start: usize) -> usize {
        let mut spaces = spaces_of_valid(word);
        while spaces != 0 {
            let at = base + (spaces.trailing_zeros() / 8) as usize;
            spaces &= spaces - 1;
            if at > start && at <= self.raw.len() {
                self.token(start, at);
            }
            start = at + 1;
        }
        start
    }

    /// Counts the token `raw[start..end]` and keeps it if it is new.
    #[inline]
    fn token(&mut self, start: usize, end: usize) {
        self.count += 1;
        if self.count > self.limits.max_scope_tokens {
            return; // over the limit: only the bytes are still checked
        }
        // INVARIANT: `start` and `end` are at ASCII bytes, so on char boundaries.
        let Some(token) = self.raw.get(start..end) else {
            return;
        };
        let hash = intern::token_hash(self.param.seed, token.as_bytes());
        if self.index.is_none() && !mark(&mut self.seen, hash) {
            self.keep(token, hash, end); // new for sure
        } else {
            self.keep_if_new(token, hash, end);
        }
    }

    /// Keeps `token` (with `hash`, ending at `end`) if the index or a scan of
    /// the kept tokens does not find it: apart from [`token`](Self::token),
    /// whose common path then needs few registers.
    #[inline(never)]
    fn keep_if_new(&mut self, token: &'a str, hash: u64, end: usize) {
        let new = match &mut self.index {
            Some(index) => index.insert(self.param, token, hash, self.param.tokens.len()),
            None => self.param.position(token, hash).is_none(),
        };
        if new {
            self.keep(token, hash, end);
        }
    }

    /// Keeps the new token `token` (with `hash`, ending at `end`).
    #[inline]
    fn keep(&mut self, token: &'a str, hash: u64, end: usize) {
        let position = self.param.tokens.len();
        if position == INLINE_TOKENS || (position == SCAN_DISTINCT && self.index.is_none()) {
            self.outgrow(token, hash, end);
        }
        self.param.tokens.push(Token { text: token, hash });
    }

    /// The token `token` (ending at `end`) is about to leave the lists'
    /// inline room, or the scans' reach: sizes the lists once for every token
    /// left, or indexes the tokens kept so far.
    #[cold]
    fn outgrow(&mut self, token: &'a str, hash: u64, end: usize) {
        let param = &mut *self.param;
        let position = param.tokens.len();
        if position == INLINE_TOKENS {
            // Each token left is preceded by a space, so counting the spaces
            // bounds them.
            let left = self.raw.as_bytes().get(end..).unwrap_or_default();
            let room =
                (count_spaces(left) + 1).min(self.limits.max_scope_tokens.saturating_sub(self.count) + 1);
            param.tokens.reserve_exact(room);
        }
        if position == SCAN_DISTINCT {
            let mut index = Index::with_room(param.tokens.capacity());
            for (at, kept) in param.tokens.iter().enumerate() {
                index.insert(param, kept.text, kept.hash, at);
            }
            index.insert(param, token, hash, position);
            self.index = Some(index);
        }
    }
}

/// Sets the filter bit of `hash` in `seen`; whether it was set already (then
/// an equal token may have been kept before).
#[inline]
fn mark(seen: &mut [u64; 4], hash: u64) -> bool {
    let bit = 1 << ((hash >> 56) & 63);
    seen.get_mut((hash >> 62) as usize)
        .is_some_and(|word| std::mem::replace(word, *word | bit) & bit != 0)
}

/// Whether two tokens are equal, for the scans that compare a token with many
/// others. Scope names tend to share their start (`read:`, `write:`) and to
/// differ at the end, so the length and the last byte settle most unequal
/// pairs without a call to `memcmp`.
#[inline]
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    work(1);
    a.len() == b.len() && a.as_bytes().last() == b.as_bytes().last() && a == b
}

/// De-duplication that keeps first appearances: it scans the tokens kept so
/// far until the scans have cost [`SCAN_BUDGET`] comparisons, then hashes
/// them, so that a long hostile list costs linear time, not quadratic.
/// SipHash, randomly keyed: the tokens may come from a request.
#[derive(Debug, Default)]
pub(crate) struct FirstSeen<'a> {
    compared: usize,
    seen: Option<HashSet<&'a str>>,
}

impl<'a> FirstSeen<'a> {
    /// Whether `token` is not in `kept`, which must hold exactly the tokens
    /// this has called new so far, in any order.
    pub(crate) fn is_new(&mut self, kept: &[&'a str], token: &'a str) -> bool {
        if self.seen.is_none() && self.compared > SCAN_BUDGET {
            self.seen = Some(kept.iter().copied().inspect(|_| work(1)).collect());
        }
        match &mut self.seen {
            Some(seen) => {
                work(1);
                seen.insert(token)
            }
            None => {
                self.compared += kept.len();
                !kept.iter().any(|kept| same_token(kept, token))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_classified_as_rfc_6749_nqchar_says() {
        for b in 0u8..=255 {
            let expected = b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
            assert_eq!(is_scope_byte(b), expected, "byte 0x{b:02x}");
        }
    }

    const BOUNDARY: &[(u8, bool, &str)] = &[
        // byte, valid, about
        (0x20, false, "space separates tokens, it is not part of one"),
        (0x21, true, "`!` is the first NQCHAR"),
        (0x22, false, "`\"` is excluded"),
        (0x23, true, "`#` starts the second range"),
        (0x5B, true, "`[` ends the second range"),
        (0x5C, false, "`\\` is excluded"),
        (0x5D, true, "`]` starts the third range"),
        (0x7E, true, "`~` ends the third range"),
        (0x7F, false, "DEL is a control byte"),
        (0x00, false, "NUL is a control byte"),
        (0x09, false, "TAB is not a separator"),
        (0x0A, false, "LF is not a separator"),
        (0x0D, false, "CR is not a separator"),
        (0x80, false, "no byte above ASCII"),
        (0xFF, false, "no byte above ASCII"),
    ];

    #[test]
    fn boundary_bytes_in_a_token() {
        for &(byte, valid, about) in BOUNDARY {
            assert_eq!(is_scope_byte(byte), valid, "{about}");
        }
        for (byte, valid, about) in BOUNDARY.iter().filter(|(b, _, _)| b.is_ascii()) {
            let token = format!("a{}b", char::from(*byte));
            let result = Scope::new(&token);
            if *valid {
                assert_eq!(result.map(|s| s.to_string()), Ok(token), "{about}");
            } else {
                assert_eq!(
                    result,
                    Err(ScopeError::InvalidByte { at: 1, byte: *byte }),
                    "{about}"
                );
            }
        }
    }

    #[test]
    fn boundary_bytes_in_a_parameter() {
        for (byte, valid, about) in BOUNDARY.iter().filter(|(b, _, _)| b.is_ascii() && *b != b' ') {
            let raw = format!("x a{}b", char::from(*byte));
            let result = ScopeParam::parse(&raw, Limits::default());
            if *valid {
                assert_eq!(result.map(|p| p.tokens().len()), Ok(2), "{about}");
            } else {
                assert_eq!(
                    result,
                    Err(ScopeError::InvalidByte { at: 3, byte: *byte }),
                    "{about}"
                );
            }
        }
    }

    /// The obvious parser: bytes one by one, then `split`, then a scan for repeats.
    fn naive(raw: &str, limits: Limits) -> Result<Vec<&str>, ScopeError> {
        if raw.len() > limits.max_scope_length {
            return Err(ScopeError::TooLong {
                len: raw.len(),
                max: limits.max_scope_length,
            });
        }
        if let Some((at, byte)) = raw
            .bytes()
            .enumerate()
            .find(|&(_, b)| b != b' ' && !is_scope_byte(b))
        {
            return Err(ScopeError::InvalidByte { at, byte });
        }
        let all: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
        if all.len() > limits.max_scope_tokens {
            return Err(ScopeError::TooManyTokens {
                max: limits.max_scope_tokens,
            });
        }
        let mut out: Vec<&str> = Vec::new();
        for token in all {
            if !out.contains(&token) {
                out.push(token);
            }
        }
        Ok(out)
    }

    #[test]
    fn every_byte_at_every_position_of_a_word_is_judged_as_the_naive_parser_judges_it() {
        let limits = Limits::default();
        // Up to 20 bytes, words; from 32, blocks: whole ones, then the last
        // one overlapping them (lengths on both sides of 32 and 64).
        let lengths = (1..=20).chain([31, 32, 33, 40, 47, 63, 64, 65, 70]);
        for byte in 0u8..=127 {
            for len in lengths.clone() {
                for at in 0..len {
                    let mut text = vec![b'a'; len];
                    if let Some(slot) = text.get_mut(at) {
                        *slot = byte;
                    }
                    let Ok(raw) = String::from_utf8(text) else {
                        continue;
                    };
                    let parsed = ScopeParam::parse(&raw, limits).map(|p| p.tokens().to_vec());
                    assert_eq!(parsed, naive(&raw, limits), "byte 0x{byte:02x} at {at} of {len}");
                }
            }
        }
        let long = "a".repeat(40);
        let non_ascii = [
            "\u{e9}".to_owned(),
            "ab\u{a0}c".to_owned(),
            "aaaaaaa\u{e9}".to_owned(),
            "aaaaaaaaaaaaaaa\u{7f}".to_owned(),
            format!("{long}\u{e9}"),
            format!("\u{e9}{long}"),
            format!("{long} \u{a0}{long}"),
        ];
        for raw in &non_ascii {
            let parsed = ScopeParam::parse(raw, limits).map(|p| p.tokens().to_vec());
            assert_eq!(parsed, naive(raw, limits), "{raw:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_as_the_naive_parser_parses_it(
            raw in "[ ab~!\\[\\]\"\\\\\t\u{7f}\u{e9}x]{0,70}",
            max_length in 0usize..80,
            max_tokens in 0usize..40,
        ) {
            let limits = Limits::new(max_length, max_tokens);
            let parsed = ScopeParam::parse(&raw, limits).map(|p| p.tokens().to_vec());
            proptest::prop_assert_eq!(parsed, naive(&raw, limits));
        }

        #[test]
        fn long_lists_of_repeats_parse_as_the_naive_parser_parses_them(
            picks in proptest::collection::vec(0usize..60, 0..200),
            gaps in proptest::collection::vec(1usize..3, 1..5),
        ) {
            let names: Vec<String> = (0..60).map(|n| format!("scope:{n}")).collect();
            let mut raw = String::new();
            for (i, pick) in picks.iter().enumerate() {
                raw.push_str(&" ".repeat(gaps[i % gaps.len()]));
                raw.push_str(&names[*pick]);
            }
            let limits = Limits::new(usize::MAX, usize::MAX);
            let parsed = ScopeParam::parse(&raw, limits).map(|p| p.tokens().to_vec());
            proptest::prop_assert_eq!(parsed, naive(&raw, limits));
        }
    }

    #[test]
    fn same_token_is_string_equality() {
        let tokens = [
            "", "a", "b", "ab", "ba", "bb", "read:x", "read:y", "write:x", "read:x ",
        ];
        for a in tokens {
            for b in tokens {
                assert_eq!(same_token(a, b), a == b, "{a:?} and {b:?}");
            }
        }
    }

    /// `n` distinct tokens `t0 t1 …`, each sent three times, interleaved.
    fn repeated(n: usize) -> (String, Vec<String>) {
        let distinct: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let raw = [
            distinct.join(" "),
            distinct.iter().rev().cloned().collect::<Vec<_>>().join("  "),
        ]
        .join(" ")
            + " "
            + &distinct.join(" ");
        (raw, distinct)
    }

    #[test]
    fn de_duplication_keeps_first_appearances_whether_it_scans_or_hashes() {
        let limits = Limits {
            max_scope_length: usize::MAX,
            max_scope_tokens: usize::MAX,
        };
        for n in [1, INLINE_TOKENS, INLINE_TOKENS + 1, 180, 181, 182, 500] {
            let (raw, distinct) = repeated(n);
            let parsed = ScopeParam::parse(&raw, limits).map(|p| p.tokens().join(" "));
            assert_eq!(parsed, Ok(distinct.join(" ")), "{n} distinct tokens");
        }
    }

    #[test]
    fn first_not_in_finds_the_first_missing_token_whether_it_scans_or_hashes() {
        let limits = Limits {
            max_scope_length: usize::MAX,
            max_scope_tokens: usize::MAX,
        };
        for n in [1, INLINE_TOKENS, 127, 128, 129, 500] {
            let (raw, _) = repeated(n);
            let all = Parsed::parse_seeded(&raw, limits, 7).unwrap_or_default();
            let with_extra = format!("{raw} extra t0");
            let wider = Parsed::parse_seeded(&with_extra, limits, 7).unwrap_or_default();
            assert_eq!(all.first_not_in(&all), None, "{n} tokens are all in themselves");
            assert_eq!(all.first_not_in(&wider), None, "{n} tokens are all in a superset");
            assert_eq!(wider.first_not_in(&all), Some("extra"), "{n} tokens plus one");
        }
    }

    #[test]
    fn non_ascii_is_refused_at_its_first_byte() {
        // U+00A0 NO-BREAK SPACE is 0xC2 0xA0 in UTF-8.
        assert_eq!(
            ScopeParam::parse("ab\u{a0}c", Limits::default()),
            Err(ScopeError::InvalidByte { at: 2, byte: 0xC2 })
        );
    }

    #[test]
    fn empty_token_is_refused() {
        assert_eq!(Scope::new(""), Err(ScopeError::Empty));
    }

    const PARAMS: &[(&str, &str, &[&str])] = &[
        // about,                        raw parameter,   tokens
        ("nothing at all", "", &[]),
        ("spaces only", "    ", &[]),
        ("runs of spaces are tolerated", "  a   b ", &["a", "b"]),
        ("repeats keep first position", "b a b", &["b", "a"]),
        ("brackets and tilde are valid", "[x] ~y", &["[x]", "~y"]),
        ("case matters", "Read read", &["Read", "read"]),
        ("patterns are plain tokens here", "read:* *", &["read:*", "*"]),
    ];

    #[test]
    fn parameters_parse_to_distinct_tokens_in_order() {
        for (about, raw, tokens) in PARAMS {
            let parsed = ScopeParam::parse(raw, Limits::default()).map(|p| p.tokens().to_vec());
            assert_eq!(parsed.as_deref(), Ok(*tokens), "{about}");
        }
    }

    #[test]
    fn limits_are_exact() {
        let limits = Limits {
            max_scope_length: 7,
            max_scope_tokens: 3,
        };
        assert!(ScopeParam::parse("a b c d", limits).is_err());
        assert_eq!(
            ScopeParam::parse("a b a", limits).map(|p| p.tokens().len()),
            Ok(2)
        );
        assert_eq!(
            ScopeParam::parse("a b a a", limits),
            Err(ScopeError::TooManyTokens { max: 3 }),
            "tokens are counted before de-duplication"
        );
        assert_eq!(
            ScopeParam::parse("abcdefgh", limits),
            Err(ScopeError::TooLong { len: 8, max: 7 })
        );
        assert!(
            ScopeParam::parse("abcdefg", limits).is_ok(),
            "at the limit is accepted"
        );
    }

    #[test]
    fn length_is_checked_before_bytes() {
        let limits = Limits {
            max_scope_length: 2,
            max_scope_tokens: 3,
        };
        assert_eq!(
            ScopeParam::parse("\t\t\t", limits),
            Err(ScopeError::TooLong { len: 3, max: 2 })
        );
    }
}
