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
    ///
    /// In a policy document and through [`FromStr`] only the short names are
    /// accepted; [`Flow::from_grant_type`] also reads the RFC 8628 URN that a
    /// token request carries for the device flow.
    Flow, "flow" {
        /// Every interactive user flow with a browser redirect (RFC 6749 §4.1):
        /// a user is present and may be asked for consent.
        AuthorizationCode = "authorization_code",
        /// A refresh (RFC 6749 §6): a user, no prompt, never wider than the original grant.
        RefreshToken = "refresh_token",
        /// A machine acting for itself (RFC 6749 §4.4): no user.
        ClientCredentials = "client_credentials",
        /// The device authorization grant (RFC 8628): the user approves on
        /// another device, so the client's identity is not assured and the
        /// user is always asked.
        DeviceCode = "device_code",
    }
}

impl Flow {
    /// The `grant_type` value of an RFC 8628 device access token request.
    pub const DEVICE_CODE_URN: &'static str = "urn:ietf:params:oauth:grant-type:device_code";

    /// Reads a token request's `grant_type` (RFC 6749 §4.1.3, §4.4.2, §6;
    /// RFC 8628 §3.4): the short names, and the RFC 8628 URN for the device flow.
    ///
    /// ```
    /// use scope_policy::Flow;
    /// assert_eq!(Flow::from_grant_type("urn:ietf:params:oauth:grant-type:device_code"), Ok(Flow::DeviceCode));
    /// assert_eq!(Flow::from_grant_type("refresh_token"), Ok(Flow::RefreshToken));
    /// assert!(Flow::from_grant_type("password").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`UnknownValue`] for any other value (matched exactly and case-sensitively).
    pub fn from_grant_type(grant_type: &str) -> Result<Flow, UnknownValue> {
        match grant_type {
            Flow::DEVICE_CODE_URN => Ok(Flow::DeviceCode),
            short => short.parse(),
        }
    }

    /// Whether the flow acts for a user: every flow but `client_credentials`.
    pub const fn has_user(self) -> bool {
        !matches!(self, Flow::ClientCredentials)
    }

    /// Whether the flow may ask the user for consent: `authorization_code`
    /// and `device_code`.
    pub const fn is_interactive(self) -> bool {
        matches!(self, Flow::AuthorizationCode | Flow::DeviceCode)
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

    /// Whether the client is public (RFC 6749 §2.1): it runs where it cannot
    /// keep a secret (`spa`, `native`), so it may not use client credentials.
    pub const fn is_public(self) -> bool {
        matches!(self, ClientKind::Spa | ClientKind::Native)
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

named_enum! {
    /// How consent treats one scope of an API.
    ScopeConsent, "scope consent setting" {
        /// The rules of consent: remembered consent may cover it, first-party
        /// clients may skip it (the default).
        Default = "default",
        /// A one-time scope (`transfer:funds`): asked on every interactive
        /// request, from every client, never covered by a consent record and
        /// never written into one; it never comes back through a refresh.
        Always = "always",
    }
}

/// The OpenID Connect `prompt` parameter of an authorization request, parsed
/// (OpenID Connect Core §3.1.2.1): a set of `none`, `login`, `consent` and
/// `select_account`.
///
/// Only `consent` and `none` change the decision: `consent` asks the user
/// again, whatever consent was remembered; `none` turns a decision that would
/// ask into the error `consent_required`. The host handles `login` and
/// `select_account` itself.
///
/// ```
/// use scope_policy::Prompt;
/// let prompt = Prompt::parse(" login  consent ")?;
/// assert!(prompt.consent() && prompt.login() && !prompt.none());
/// assert!(Prompt::parse("none login").is_err());
/// assert!(Prompt::parse("").map(|p| p.is_empty())?);
/// # Ok::<(), scope_policy::PromptError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Prompt {
    bits: u8,
}

impl Prompt {
    const NONE: u8 = 1;
    const LOGIN: u8 = 2;
    const CONSENT: u8 = 4;
    const SELECT_ACCOUNT: u8 = 8;

    /// Parses the raw parameter: values separated by spaces (runs, leading and
    /// trailing spaces tolerated), each one of the four OIDC values; a
    /// repeated value counts once. An empty parameter is the empty set.
    ///
    /// # Errors
    ///
    /// [`PromptError::UnknownValue`] for any other value, including one
    /// joined by a separator other than a space (a TAB, a comma, `+`);
    /// [`PromptError::NoneWithOthers`] when `none` comes with another value.
    pub fn parse(raw: &str) -> Result<Prompt, PromptError> {
        let mut bits = 0;
        for value in raw.split(' ').filter(|value| !value.is_empty()) {
            bits |= match value {
                "none" => Prompt::NONE,
                "login" => Prompt::LOGIN,
                "consent" => Prompt::CONSENT,
                "select_account" => Prompt::SELECT_ACCOUNT,
                _ => return Err(PromptError::UnknownValue),
            };
        }
        if bits & Prompt::NONE != 0 && bits != Prompt::NONE {
            return Err(PromptError::NoneWithOthers);
        }
        Ok(Prompt { bits })
    }

    /// Whether no value was given.
    pub const fn is_empty(self) -> bool {
        self.bits == 0
    }

    /// `none`: the user must not be asked anything.
    pub const fn none(self) -> bool {
        self.bits & Prompt::NONE != 0
    }

    /// `login`: the host must authenticate the user again.
    pub const fn login(self) -> bool {
        self.bits & Prompt::LOGIN != 0
    }

    /// `consent`: the user must be asked for consent again.
    pub const fn consent(self) -> bool {
        self.bits & Prompt::CONSENT != 0
    }

    /// `select_account`: the host must let the user pick an account.
    pub const fn select_account(self) -> bool {
        self.bits & Prompt::SELECT_ACCOUNT != 0
    }
}

/// Why a `prompt` parameter was refused (the request is `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// A value other than `none`, `login`, `consent` and `select_account`,
    /// or values joined by something other than spaces.
    #[error("prompt holds a value other than none, login, consent and select_account")]
    UnknownValue,
    /// `none` together with another value (OpenID Connect Core §3.1.2.1).
    #[error("prompt=none must stand alone")]
    NoneWithOthers,
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
        assert_eq!("always".parse::<ScopeConsent>(), Ok(ScopeConsent::Always));
    }

    #[test]
    fn grant_types_accept_the_device_urn_only_where_a_token_request_is_read() {
        assert_eq!(Flow::from_grant_type(Flow::DEVICE_CODE_URN), Ok(Flow::DeviceCode));
        assert!(
            Flow::DEVICE_CODE_URN.parse::<Flow>().is_err(),
            "documents use short names only"
        );
        assert!(Flow::from_grant_type("Device_Code").is_err(), "case-sensitive");
        for flow in Flow::ALL {
            assert_eq!(Flow::from_grant_type(flow.as_str()), Ok(*flow));
        }
    }

    /// Whether a parsed prompt holds `none`, `login`, `consent`, `select_account`.
    type Values = (bool, bool, bool, bool);

    const PROMPTS: &[(&str, &str, Result<Values, PromptError>)] = &[
        // about, raw, (none, login, consent, select_account)
        ("empty is the empty set", "", Ok((false, false, false, false))),
        (
            "spaces only are the empty set",
            "   ",
            Ok((false, false, false, false)),
        ),
        ("none alone", "none", Ok((true, false, false, false))),
        (
            "none twice is none alone",
            "none none",
            Ok((true, false, false, false)),
        ),
        (
            "a set of values",
            " login  consent select_account ",
            Ok((false, true, true, true)),
        ),
        (
            "none with another value",
            "none login",
            Err(PromptError::NoneWithOthers),
        ),
        (
            "an unknown value",
            "consent create",
            Err(PromptError::UnknownValue),
        ),
        (
            "a TAB is not a separator",
            "login\tconsent",
            Err(PromptError::UnknownValue),
        ),
        (
            "a comma is not a separator",
            "login,consent",
            Err(PromptError::UnknownValue),
        ),
        (
            "values are case-sensitive",
            "Consent",
            Err(PromptError::UnknownValue),
        ),
    ];

    #[test]
    fn prompt_values_are_a_set_separated_by_spaces() {
        for (about, raw, expected) in PROMPTS {
            let parsed = Prompt::parse(raw).map(|p| (p.none(), p.login(), p.consent(), p.select_account()));
            assert_eq!(parsed, *expected, "{about}");
        }
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
