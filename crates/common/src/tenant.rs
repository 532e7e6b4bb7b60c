//! Tenant ids: taken from `X-Scope-OrgID`, validated before they are used in
//! any path, object key or metric label.

use std::fmt;

use http::HeaderMap;

use crate::error::{ErrorCode, ServiceError};

/// The header that carries the tenant id (matched case-insensitively).
pub const ORG_ID_HEADER: &str = "x-scope-orgid";

/// The tenant every request belongs to when auth is disabled.
pub const FAKE_TENANT: &str = "fake";

const MAX_TENANT_ID_LENGTH: usize = 150;

/// A validated tenant id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// Why a tenant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// Auth is enabled and the request carries no tenant.
    #[error("no org id")]
    Missing,
    /// The id is longer than Loki allows.
    #[error("tenant ID is too long: max {MAX_TENANT_ID_LENGTH} characters")]
    TooLong,
    /// `.` and `..` would escape directories.
    #[error("tenant ID is '.' or '..'")]
    DotOrDotDot,
    /// A character outside Loki's allowed set.
    #[error("tenant ID '{id}' contains unsupported character '{character}'")]
    UnsupportedCharacter {
        /// The id as sent.
        id: String,
        /// The first character that is not allowed.
        character: char,
    },
    /// The id is empty.
    #[error("tenant ID is empty")]
    Empty,
    /// `a|b` names several tenants where only one is allowed.
    #[error("multiple org IDs present")]
    Multiple,
}

impl ServiceError for TenantError {
    fn code(&self) -> ErrorCode {
        match self {
            TenantError::Missing => ErrorCode::Unauthorized,
            _ => ErrorCode::BadRequest,
        }
    }
}

impl TenantId {
    /// Validates a tenant id with Loki's rules: at most 150 characters from
    /// `A-Za-z0-9!-_.*'()`, and not `.` or `..`.
    pub fn new(id: &str) -> Result<TenantId, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > MAX_TENANT_ID_LENGTH {
            return Err(TenantError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantError::DotOrDotDot);
        }
        if let Some(character) = id.chars().find(|c| !is_allowed(*c)) {
            return Err(TenantError::UnsupportedCharacter {
                id: id.to_string(),
                character,
            });
        }
        Ok(TenantId(id.to_string()))
    }

    /// Returns the tenant used when auth is disabled.
    pub fn fake() -> TenantId {
        TenantId(FAKE_TENANT.to_string())
    }

    /// Returns the tenant a request belongs to: `fake` when auth is disabled,
    /// else the validated `X-Scope-OrgID` header, which must name one
    /// tenant.
    pub fn from_headers(headers: &HeaderMap, auth_enabled: bool) -> Result<TenantId, TenantError> {
        let mut tenants = TenantId::all_from_headers(headers, auth_enabled)?;
        if tenants.len() > 1 {
            return Err(TenantError::Multiple);
        }
        Ok(tenants
            .pop()
            .expect("all_from_headers returns at least one tenant"))
    }

    /// Returns the tenants a read request names: `fake` when auth is
    /// disabled, else the `X-Scope-OrgID` header, where `a|b` names several
    /// (each validated; sorted, duplicates removed, as Loki does).
    pub fn all_from_headers(
        headers: &HeaderMap,
        auth_enabled: bool,
    ) -> Result<Vec<TenantId>, TenantError> {
        if !auth_enabled {
            return Ok(vec![TenantId::fake()]);
        }
        let value = headers
            .get(ORG_ID_HEADER)
            .ok_or(TenantError::Missing)?
            .to_str()
            .map_err(|_| TenantError::UnsupportedCharacter {
                id: String::from_utf8_lossy(headers[ORG_ID_HEADER].as_bytes()).into_owned(),
                character: char::REPLACEMENT_CHARACTER,
            })?;
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(TenantError::Missing);
        }
        let mut tenants = trimmed
            .split('|')
            .map(|id| TenantId::new(id.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        tenants.sort();
        tenants.dedup();
        Ok(tenants)
    }

    /// Returns the id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loki_characters() {
        for id in ["a", "team-a_1", "x.y", "(ok)!*'", &"a".repeat(150)] {
            assert_eq!(TenantId::new(id).expect(id).as_str(), id);
        }
    }

    #[test]
    fn rejects_what_loki_rejects() {
        assert_eq!(TenantId::new("."), Err(TenantError::DotOrDotDot));
        assert_eq!(TenantId::new(".."), Err(TenantError::DotOrDotDot));
        assert_eq!(TenantId::new(&"a".repeat(151)), Err(TenantError::TooLong));
        assert_eq!(
            TenantId::new("a/b").unwrap_err().to_string(),
            "tenant ID 'a/b' contains unsupported character '/'"
        );
        assert!(TenantId::new("a|b").is_err());
        assert!(TenantId::new("").is_err());
    }

    #[test]
    fn header_rules() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            TenantId::from_headers(&headers, false).unwrap().as_str(),
            "fake"
        );
        assert_eq!(
            TenantId::from_headers(&headers, true),
            Err(TenantError::Missing)
        );
        assert_eq!(TenantError::Missing.code(), ErrorCode::Unauthorized);
        headers.insert("X-Scope-OrgID", "team1".parse().unwrap());
        assert_eq!(
            TenantId::from_headers(&headers, true).unwrap().as_str(),
            "team1"
        );
        assert_eq!(
            TenantId::from_headers(&headers, false).unwrap().as_str(),
            "fake"
        );
    }

    #[test]
    fn several_tenants_only_where_asked_for() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Scope-OrgID", "b|a|b".parse().unwrap());
        let all = TenantId::all_from_headers(&headers, true).unwrap();
        assert_eq!(
            all.iter().map(TenantId::as_str).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            TenantId::from_headers(&headers, true),
            Err(TenantError::Multiple)
        );
        assert_eq!(TenantError::Multiple.code(), ErrorCode::BadRequest);
        headers.insert("X-Scope-OrgID", "a|".parse().unwrap());
        assert_eq!(
            TenantId::all_from_headers(&headers, true),
            Err(TenantError::Empty)
        );
        headers.insert("X-Scope-OrgID", "a|../b".parse().unwrap());
        assert!(TenantId::all_from_headers(&headers, true).is_err());
        headers.insert("X-Scope-OrgID", "solo".parse().unwrap());
        assert_eq!(TenantId::all_from_headers(&headers, true).unwrap().len(), 1);
    }
}
