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

mod consent;
mod decide;
mod document;
mod error;
mod explain;
mod grant;
mod intern;
mod metadata;
mod policy;
mod prompt;
mod reader;
mod redirect;
mod request;
mod response;
mod scope;
mod scope_set;
mod vocab;
mod work;

/// The rules of the decision, complete: a chapter to read, not code.
#[doc = include_str!("rules.md")]
pub mod rules {}

pub use consent::ConsentRecord;
pub use decide::{grant, Decision};
pub use document::{
    ApiDocument, ClientDocument, ClientGrantDocument, PermissionDocument, PolicyDocument, RoleDocument,
    ScopeDocument, SettingsDocument,
};
pub use error::{ErrorCode, GrantError, LoadError, PolicyError, PolicyErrors, Problem};
pub use explain::{Check, Explanation, Mark, Outcome, ScopeExplanation, Step};
pub use grant::{DenyReason, Grant, Verdict};
pub use metadata::Metadata;
pub use policy::{Api, Client, Policy, Role, ScopeDefinition};
pub use prompt::{ConsentPrompt, PromptId, PromptScope};
pub use redirect::{is_verifiable_redirect, redirect_host};
pub use request::{Permission, Request, RequestParams, User};
pub use response::{AccessTokenClaims, ErrorResponse};
pub use scope::{is_oidc_scope, Limits, Scope, ScopeError, ScopeParam, OFFLINE_ACCESS, OIDC_SCOPES};
pub use vocab::{
    ClientAccess, ClientKind, Flow, Prompt, PromptError, ScopeConsent, Subject, UnknownScopes, UnknownValue,
    UserAccess,
};
