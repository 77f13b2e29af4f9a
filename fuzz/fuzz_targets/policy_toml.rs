//! `Policy::from_toml` on arbitrary text: a policy or a typed error, never a
//! panic, a stack overflow or a blow-up. What builds round-trips through JSON
//! and TOML and decides without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scope_policy::{Policy, PolicyDocument};

#[path = "policy_common.rs"]
mod policy_common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::from_toml(text) {
        Ok(policy) => {
            let document = PolicyDocument::from_toml(text).expect("a policy that built reads as a document");
            policy_common::check_built(&document, &policy);
        }
        Err(error) => policy_common::check_refused(&error, PolicyDocument::from_toml(text)),
    }
});
