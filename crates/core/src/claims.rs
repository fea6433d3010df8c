//! The claims of a Tessera access token (RFC 9068 profile).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `client_id` claim of every token Tessera issues.
pub const CLIENT_ID: &str = "tessera";

/// One audience or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single resource.
    One(String),
    /// A list of resources.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `resource` is among the audiences.
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Self::One(a) => a == resource,
            Self::Many(list) => list.iter().any(|a| a == resource),
        }
    }
}

impl From<Vec<String>> for Audience {
    fn from(mut v: Vec<String>) -> Self {
        if v.len() == 1 { Self::One(v.remove(0)) } else { Self::Many(v) }
    }
}

/// The claims Tessera signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the Tessera public URL.
    pub iss: String,
    /// Subject: the owning user's id.
    pub sub: String,
    /// Resources the token is for.
    pub aud: Audience,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id; also the primary key of its row.
    pub jti: Uuid,
    /// Space-separated granted scopes.
    pub scope: String,
    /// Always `tessera`.
    pub client_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> serde_json::Value {
        serde_json::json!({
            "iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "nbf": 1,
            "jti": Uuid::nil(), "scope": "read:tasks", "client_id": CLIENT_ID,
        })
    }

    #[test]
    fn claims_without_exp_do_not_deserialize() {
        let mut v = json();
        v.as_object_mut().unwrap().remove("exp");
        assert!(serde_json::from_value::<Claims>(v).is_err());
    }

    #[test]
    fn audience_is_a_string_or_a_list() {
        let c: Claims = serde_json::from_value(json()).unwrap();
        assert_eq!(c.aud, Audience::One("a".into()));
        let mut v = json();
        v["aud"] = serde_json::json!(["a", "b"]);
        let c: Claims = serde_json::from_value(v).unwrap();
        assert!(c.aud.contains("b"));
        assert!(!c.aud.contains("c"));
    }

    #[test]
    fn single_audience_list_becomes_one() {
        assert_eq!(Audience::from(vec!["a".to_owned()]), Audience::One("a".into()));
        assert_eq!(serde_json::to_value(Audience::from(vec!["a".to_owned()])).unwrap(), "a");
    }
}
