//! `ScopeParam::parse` on arbitrary text with arbitrary limits.
//!
//! The first three bytes pick the limits (0xFFFF / 0xFF mean "no limit"); the
//! rest is the raw parameter (lossily decoded when it is not UTF-8, so that
//! non-ASCII still reaches the parser). The result must equal a naive
//! reading of DESIGN §2, and a parsed parameter must hold distinct, valid,
//! non-empty tokens, borrowed from the input, in first-appearance order.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use scope_policy::{Limits, Scope, ScopeError, ScopeParam};

fn nqchar(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// DESIGN §2, read literally: length first, then bytes, then the token count.
fn expected(raw: &str, limits: Limits) -> Result<Vec<&str>, ScopeError> {
    if raw.len() > limits.max_scope_length {
        return Err(ScopeError::TooLong {
            len: raw.len(),
            max: limits.max_scope_length,
        });
    }
    if let Some((at, &byte)) = raw
        .as_bytes()
        .iter()
        .enumerate()
        .find(|(_, &b)| b != b' ' && !nqchar(b))
    {
        return Err(ScopeError::InvalidByte { at, byte });
    }
    let all: Vec<&str> = raw.split(' ').filter(|t| !t.is_empty()).collect();
    if all.len() > limits.max_scope_tokens {
        return Err(ScopeError::TooManyTokens {
            max: limits.max_scope_tokens,
        });
    }
    let mut seen = BTreeSet::new();
    Ok(all.into_iter().filter(|t| seen.insert(*t)).collect())
}

fuzz_target!(|data: &[u8]| {
    let (head, rest) = data.split_at(data.len().min(3));
    let mut head = head.to_vec();
    head.resize(3, 0);
    let max_scope_length = match u16::from_le_bytes([head[0], head[1]]) {
        u16::MAX => usize::MAX,
        n => usize::from(n),
    };
    let max_scope_tokens = match head[2] {
        u8::MAX => usize::MAX,
        n => usize::from(n),
    };
    let limits = Limits {
        max_scope_length,
        max_scope_tokens,
    };
    let raw = String::from_utf8_lossy(rest);
    let raw: &str = &raw;

    let got = ScopeParam::parse(raw, limits);
    let want = expected(raw, limits);
    assert_eq!(
        got.as_ref().map(|p| p.tokens().to_vec()).map_err(|e| *e),
        want,
        "raw {raw:?}, limits {limits:?}"
    );

    if let Ok(param) = got {
        assert_eq!(param.is_empty(), param.tokens().is_empty());
        let mut seen = BTreeSet::new();
        let range = raw.as_bytes().as_ptr_range();
        let mut last_start = None;
        for token in param.tokens() {
            assert!(!token.is_empty(), "empty token");
            assert!(Scope::new(token).is_ok(), "invalid token {token:?}");
            assert!(seen.insert(*token), "repeated token {token:?}");
            assert!(param.contains(token));
            // Borrowed from the input, and first appearances come in order.
            let start = token.as_ptr();
            assert!(range.contains(&start), "token not borrowed from the input");
            let offset = start as usize - range.start as usize;
            if let Some(previous) = last_start {
                assert!(offset > previous, "tokens out of order");
            }
            last_start = Some(offset);
        }
        // Rendering and parsing again gives the same tokens.
        let rendered = param.tokens().join(" ");
        let again = ScopeParam::parse(
            &rendered,
            Limits {
                max_scope_length: usize::MAX,
                max_scope_tokens: usize::MAX,
            },
        )
        .expect("a rendered parameter parses");
        assert_eq!(again.tokens(), param.tokens());
    }
});
