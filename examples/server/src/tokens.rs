//! Tokens: RFC 9068 access tokens signed with Ed25519 (EdDSA), OpenID
//! Connect ID tokens, and what an authorization code or an approved device
//! code carries until the client exchanges it.

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::SigningKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use scope_policy::Grant;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::oauth::{now, random_token};

/// The environment variable holding the signing key: an Ed25519 private
/// key, PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
pub const SIGNING_KEY_VAR: &str = "SCOPE_SERVER_SIGNING_KEY";

/// Signs tokens with one Ed25519 key, published at the JWKS endpoint.
pub struct Signer {
    key: EncodingKey,
    /// The public key as a JWK, with its `kid`.
    jwk: Jwk,
    kid: String,
}

impl Signer {
    /// The key from [`SIGNING_KEY_VAR`], or a development key generated now
    /// (logged as such: its tokens do not verify after a restart).
    pub fn from_env() -> Result<Self, Box<dyn std::error::Error>> {
        let signing_key = match std::env::var(SIGNING_KEY_VAR) {
            Ok(pem) => SigningKey::from_pkcs8_pem(&pem)
                .map_err(|error| format!("{SIGNING_KEY_VAR} is not an Ed25519 PKCS#8 PEM key: {error}"))?,
            Err(_) => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)?;
                SigningKey::from_bytes(&seed)
            }
        };
        // jsonwebtoken reads a PKCS#8 v1 document (the seed, no public key),
        // as `openssl genpkey` writes it.
        let v1 = KeypairBytes {
            secret_key: signing_key.to_bytes(),
            public_key: None,
        };
        let key = EncodingKey::from_ed_der(v1.to_pkcs8_der()?.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::EdDSA)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        match std::env::var_os(SIGNING_KEY_VAR) {
            Some(_) => tracing::info!(%kid, "signing with the key from {SIGNING_KEY_VAR}"),
            None => tracing::warn!(
                %kid,
                "no {SIGNING_KEY_VAR}: signing with a generated DEVELOPMENT key; its tokens will not verify after a restart"
            ),
        }
        Ok(Signer { key, jwk, kid })
    }

    /// The JWK Set to publish (RFC 7517 §5).
    pub fn jwks(&self) -> Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// The claims of an access token this server signed for `audience`, if it is valid now.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Option<Map<String, Value>> {
        let key = DecodingKey::from_jwk(&self.jwk).ok()?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some("at+jwt") {
            return None; // RFC 9068 §4: an ID token is not an access token
        }
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// Signs `claims` with the header's `typ`.
    fn sign(&self, typ: &str, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key)
    }

    /// An RFC 9068 access token: `typ: at+jwt`, the host's `iss`, `exp`,
    /// `iat`, `jti`, and the crate's claims (`aud`, `sub`, `client_id`,
    /// `scope`, `permissions`) flattened in.
    ///
    /// A grant with no audience holds OIDC scopes only; RFC 9068 requires an
    /// `aud`, so such a token is for this server's userinfo endpoint.
    pub fn access_token(
        &self,
        issuer: &str,
        ttl: u64,
        claims: &Map<String, Value>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now();
        let mut claims = std::borrow::Cow::Borrowed(claims);
        if !claims.contains_key("aud") {
            claims
                .to_mut()
                .insert("aud".to_owned(), Value::String(format!("{issuer}/userinfo")));
        }
        self.sign(
            "at+jwt",
            &AccessToken {
                iss: issuer,
                iat,
                exp: iat.saturating_add(ttl),
                jti: random_token(),
                claims: &*claims,
            },
        )
    }

    /// An OpenID Connect ID token (Core §2) for the client.
    pub fn id_token(
        &self,
        issuer: &str,
        ttl: u64,
        grant: &IdTokenGrant,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = now();
        let claims = serde_json::json!({
            "iss": issuer, "sub": grant.sub, "aud": grant.client_id,
            "iat": iat, "exp": iat.saturating_add(ttl), "auth_time": grant.auth_time,
            "nonce": grant.nonce,
        });
        self.sign("JWT", &claims)
    }
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Serialize)]
struct AccessToken<'a, C: Serialize> {
    iss: &'a str,
    exp: u64,
    iat: u64,
    jti: String,
    #[serde(flatten)]
    claims: &'a C,
}

/// What a token response will carry, decided when the user was there: an
/// authorization code and an approved device code keep it in the store
/// until the client comes for its tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Issuance {
    /// The crate's access token claims (`Grant::claims(..).with_permissions()`), as JSON.
    pub claims: Map<String, Value>,
    /// The granted scope string.
    pub scope: String,
    /// Whether the response must carry `scope` (RFC 6749 §5.1).
    pub scope_changed: bool,
    /// The grant a refresh token will refresh, when one is issued.
    pub refresh: Option<RefreshGrant>,
    /// The ID token to issue, when `openid` was granted.
    pub id_token: Option<IdTokenGrant>,
}

/// What the store keeps with a refresh token: the refreshed grant's scope
/// and audience, never taken from the client's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub original_scope: String,
    pub original_audience: Option<String>,
}

/// What an ID token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenGrant {
    pub sub: String,
    pub client_id: String,
    pub auth_time: u64,
    pub nonce: Option<String>,
}

impl Issuance {
    /// What to issue for `grant`. `nonce` is the authorization request's.
    // CRATE: `AccessTokenClaims` borrows the grant and is not `Deserialize`,
    // so a code that must carry the claims until the exchange keeps them as
    // a JSON map.
    pub fn of(grant: &Grant<'_>, nonce: Option<String>) -> Result<Self, serde_json::Error> {
        let claims = match serde_json::to_value(grant.claims(grant.subject()).with_permissions())? {
            Value::Object(claims) => claims,
            _ => Map::new(),
        };
        // CRATE: what a refresh token must remember (the crate's
        // `original_scope` and `original_audience` of a later refresh) is
        // assembled here by hand from the grant.
        let refresh = grant
            .user_id()
            .filter(|_| grant.refresh_token())
            .map(|user_id| RefreshGrant {
                client_id: grant.client_id().to_owned(),
                user_id: user_id.to_owned(),
                original_scope: grant.scope_string(),
                original_audience: grant.audience().map(str::to_owned),
            });
        let id_token = grant
            .user_id()
            .filter(|_| grant.is_granted("openid"))
            .map(|sub| IdTokenGrant {
                sub: sub.to_owned(),
                client_id: grant.client_id().to_owned(),
                auth_time: now(),
                nonce,
            });
        Ok(Issuance {
            claims,
            scope: grant.scope_string(),
            scope_changed: grant.scope_changed(),
            refresh,
            id_token,
        })
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
