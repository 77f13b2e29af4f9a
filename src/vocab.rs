//! The named values of a policy and a request: flows, client kinds, access policies.
//!
//! Each renders as, and parses from, the snake_case spelling of the policy
//! document (`machine_to_machine`, `require_client_grant`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that is not one of the spellings an enum accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct UnknownValue {
    /// What was being parsed, such as `client kind`.
    pub what: &'static str,
    /// The value as written.
    pub value: String,
    /// The accepted spellings, comma-separated.
    pub expected: &'static str,
}

/// Defines an enum whose variants have one snake_case spelling each, with
/// `as_str`, `ALL`, `Display`, `FromStr` and serde through those spellings.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case spelling used in policy documents.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($($text, " "),+).trim_ascii_end(),
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named_enum! {
    /// An OAuth 2.0 flow, which is also a client's grant type.
    Flow, "flow" {
        /// Every interactive user flow (RFC 6749 §4.1): a user is present and may be asked for consent.
        AuthorizationCode = "authorization_code",
        /// A refresh (RFC 6749 §6): a user, no prompt, never wider than the original grant.
        RefreshToken = "refresh_token",
        /// A machine acting for itself (RFC 6749 §4.4): no user.
        ClientCredentials = "client_credentials",
    }
}

impl Flow {
    /// Whether the flow acts for a user (`authorization_code`, `refresh_token`).
    pub const fn has_user(self) -> bool {
        !matches!(self, Flow::ClientCredentials)
    }
}

named_enum! {
    /// What kind of application a client is.
    ClientKind, "client kind" {
        /// A single-page application in a browser.
        Spa = "spa",
        /// A server-rendered web application.
        RegularWeb = "regular_web",
        /// A mobile or desktop application.
        Native = "native",
        /// A back-end service acting for itself.
        MachineToMachine = "machine_to_machine",
    }
}

impl ClientKind {
    /// The grant types a client of this kind has when the policy names none:
    /// `client_credentials` for a machine, otherwise `authorization_code` and `refresh_token`.
    pub const fn default_grant_types(self) -> &'static [Flow] {
        match self {
            ClientKind::MachineToMachine => &[Flow::ClientCredentials],
            ClientKind::Spa | ClientKind::RegularWeb | ClientKind::Native => {
                &[Flow::AuthorizationCode, Flow::RefreshToken]
            }
        }
    }

    /// The subject a client grant has when the policy names none:
    /// `client` for a machine, otherwise `user`.
    pub const fn default_subject(self) -> Subject {
        match self {
            ClientKind::MachineToMachine => Subject::Client,
            ClientKind::Spa | ClientKind::RegularWeb | ClientKind::Native => Subject::User,
        }
    }
}

named_enum! {
    /// Whom a client grant is for.
    Subject, "grant subject" {
        /// Tokens the client gets for itself (client credentials).
        Client = "client",
        /// Tokens the client gets for a user (user flows).
        User = "user",
    }
}

named_enum! {
    /// Which clients may get user tokens for an API.
    UserAccess, "user access policy" {
        /// Every client may (the default).
        AllowAll = "allow_all",
        /// Only clients with a `subject: user` grant for the API, and only the grant's scopes.
        RequireClientGrant = "require_client_grant",
        /// No client may.
        DenyAll = "deny_all",
    }
}

named_enum! {
    /// Which clients may get client-credentials tokens for an API.
    ClientAccess, "client access policy" {
        /// Only clients with a `subject: client` grant for the API (the default).
        RequireClientGrant = "require_client_grant",
        /// No client may.
        DenyAll = "deny_all",
    }
}

named_enum! {
    /// What a request's unknown scope tokens do.
    UnknownScopes, "unknown_scopes setting" {
        /// They are left out of the grant with the reason `undefined` (the default).
        Ignore = "ignore",
        /// The request fails with `invalid_scope`.
        Reject = "reject",
    }
}

/// A consent prompt requested by the client (OpenID Connect Core §3.1.2.1 `prompt`).
///
/// Only `consent` changes the decision; the host handles `login`,
/// `select_account` and `none` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Prompt {
    /// No `prompt=consent`: remembered consent counts.
    #[default]
    Default,
    /// `prompt=consent`: ask again, whatever consent was remembered.
    Consent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for flow in Flow::ALL {
            assert_eq!(flow.as_str().parse::<Flow>(), Ok(*flow));
        }
        for kind in ClientKind::ALL {
            assert_eq!(kind.to_string().parse::<ClientKind>(), Ok(*kind));
        }
        assert_eq!("deny_all".parse::<UserAccess>(), Ok(UserAccess::DenyAll));
        assert_eq!("deny_all".parse::<ClientAccess>(), Ok(ClientAccess::DenyAll));
        assert_eq!("reject".parse::<UnknownScopes>(), Ok(UnknownScopes::Reject));
        assert_eq!("user".parse::<Subject>(), Ok(Subject::User));
    }

    #[test]
    fn unknown_spelling_lists_the_accepted_ones() {
        let err = "Spa".parse::<ClientKind>().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                r#"unknown client kind "Spa"; expected one of spa regular_web native machine_to_machine"#
                    .to_owned()
            )
        );
    }
}
