//! The operator token: a random bearer secret. The server keeps only its SHA-256
//! ([`TokenDigest`], in `token.sha256`), so a device's files never hold the token itself;
//! the client config holds the token.

use sha2::{Digest, Sha256};

use crate::CredentialsError;

/// A bearer token: `vyoma_` and 64 hex digits (256 random bits).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Prefix of every token, so one found in a log or a paste is recognisable.
pub const TOKEN_PREFIX: &str = "vyoma_";

impl Token {
    /// A fresh random token from the operating system's generator.
    pub fn generate() -> Result<Token, CredentialsError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| CredentialsError::Random(e.to_string()))?;
        Ok(Token(format!("{TOKEN_PREFIX}{}", hex::encode(bytes))))
    }

    /// A token as written in a client config or an environment variable.
    pub fn new(text: impl Into<String>) -> Token {
        Token(text.into())
    }

    /// The text to send as `Authorization: Bearer ...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the server keeps.
    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// The SHA-256 of the token, which the server checks presented tokens against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// Hex, as stored in `token.sha256`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the hex form (surrounding whitespace allowed).
    pub fn from_hex(text: &str) -> Option<TokenDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out).ok()?;
        Some(TokenDigest(out))
    }

    /// Whether `presented` is the token, compared in constant time (of the digests).
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        d.iter().zip(self.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Why a request's credentials were refused; never says anything about the apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// A header that is not `Bearer TOKEN`.
    NotBearer,
    /// The wrong token.
    Wrong,
}

impl Refusal {
    /// What the client is told.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "missing token: send `Authorization: Bearer TOKEN` (the token is in the client config that `vyoma run` or `vyoma image build` wrote; see docs/api.md)"
            }
            Refusal::NotBearer => "the Authorization header must be `Bearer TOKEN`",
            Refusal::Wrong => {
                "wrong token: use the token from this instance's client config (docs/api.md says where it is)"
            }
        }
    }
}

/// Checks an `Authorization` header's value against `expected`.
pub fn check_bearer(header: Option<&[u8]>, expected: &TokenDigest) -> Result<(), Refusal> {
    let value = header.ok_or(Refusal::Missing)?;
    let value = std::str::from_utf8(value).map_err(|_| Refusal::NotBearer)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(Refusal::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::NotBearer);
    }
    if expected.matches(token.trim()) {
        Ok(())
    } else {
        Err(Refusal::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_checked_by_digest() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        assert!(a.as_str().starts_with(TOKEN_PREFIX) && a.as_str().len() == TOKEN_PREFIX.len() + 64);
        let d = a.digest();
        assert_eq!(TokenDigest::from_hex(&format!(" {}\n", d.to_hex())), Some(d));
        assert_eq!(TokenDigest::from_hex("nothex"), None);
        assert!(d.matches(a.as_str()) && !d.matches(b.as_str()));
        assert_eq!(format!("{a:?}"), "Token(..)");
    }

    #[test]
    fn bearer_headers() {
        let t = Token::new("vyoma_secret");
        let d = t.digest();
        assert_eq!(check_bearer(Some(b"Bearer vyoma_secret"), &d), Ok(()));
        assert_eq!(check_bearer(Some(b"bearer  vyoma_secret "), &d), Ok(()));
        assert_eq!(check_bearer(None, &d), Err(Refusal::Missing));
        assert_eq!(check_bearer(Some(b"Basic dXNlcjpwYXNz"), &d), Err(Refusal::NotBearer));
        assert_eq!(check_bearer(Some(b"vyoma_secret"), &d), Err(Refusal::NotBearer));
        assert_eq!(check_bearer(Some(b"Bearer \xff"), &d), Err(Refusal::NotBearer));
        assert_eq!(check_bearer(Some(b"Bearer vyoma_other"), &d), Err(Refusal::Wrong));
    }
}
