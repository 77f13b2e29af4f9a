#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::todo,
    clippy::unimplemented
)]

mod document;
mod error;
mod grant;
mod policy;
mod request;
mod scope;
mod scope_set;
mod vocab;

pub use document::{
    ApiDocument, ClientDocument, ClientGrantDocument, PermissionDocument, PolicyDocument, RoleDocument,
    ScopeDocument, SettingsDocument,
};
pub use error::{ErrorCode, GrantError, LoadError, PolicyError, PolicyErrors, Problem};
pub use grant::{grant, ConsentPrompt, Decision, DenyReason, Grant, PromptScope, Verdict};
pub use policy::{Api, Client, Policy, Role};
pub use request::{ConsentRecord, Permission, Request, User};
pub use scope::{is_oidc_scope, Limits, Scope, ScopeError, ScopeParam, OFFLINE_ACCESS, OIDC_SCOPES};
pub use vocab::{ClientAccess, ClientKind, Flow, Prompt, Subject, UnknownScopes, UnknownValue, UserAccess};
