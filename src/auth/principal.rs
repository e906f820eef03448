use serde_json::{Map, Value};

use super::AuthError;
use crate::domain::UserId;

pub const SCOPE_READ: &str = "library:read";
pub const SCOPE_WRITE: &str = "library:write";
pub const SCOPE_ANY_USER: &str = "library:any_user";
pub const SCOPE_ADMIN: &str = "library:admin";

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    /// `None`: a listener's session token (no `scope` claim).
    pub scopes: Option<Vec<String>>,
}

/// What a call does to the library it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller is a service (its subject is no listener) and named no user.
    #[error("user_id is required")]
    UserRequired,
}

/// Claims are checked for their JSON type: a `scope` that is not a string, or an `nbf` that is
/// not a number, is an error rather than something to ignore.
pub(super) fn from_claims(claims: Map<String, Value>) -> Result<Principal, AuthError> {
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(AuthError::BadClaim("sub".into())),
    };
    if !matches!(claims.get("exp"), Some(Value::Number(_))) {
        return Err(AuthError::BadClaim("exp".into()));
    }
    if !matches!(claims.get("nbf"), None | Some(Value::Number(_))) {
        return Err(AuthError::BadClaim("nbf".into()));
    }
    let scopes = match claims.get("scope") {
        None => None,
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_string).collect()),
        Some(_) => return Err(AuthError::BadClaim("scope".into())),
    };
    if scopes.is_none() && UserId::parse(&subject).is_err() {
        // A session token speaks for a listener, so its subject must be one.
        return Err(AuthError::BadClaim("sub".into()));
    }
    Ok(Principal { subject, scopes })
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }

    fn own_id(&self) -> Option<UserId> {
        UserId::parse(&self.subject).ok()
    }

    /// Admin calls are not about one library: they need the `library:admin` scope, which a
    /// session token never has.
    pub fn authorize_admin(&self) -> Result<(), Denied> {
        match &self.scopes {
            None => Err(Denied::PermissionDenied(
                "a session token cannot use admin calls".into(),
            )),
            Some(_) if self.has_scope(SCOPE_ADMIN) => Ok(()),
            Some(_) => Err(Denied::PermissionDenied(format!(
                "admin calls need the {SCOPE_ADMIN} scope"
            ))),
        }
    }

    /// Decides whose library a call acts on: `requested` (the request's user_id) or, when it is
    /// `None`, the caller.
    pub fn authorize(&self, requested: Option<UserId>, access: Access) -> Result<UserId, Denied> {
        let own = self.own_id();
        let Some(_) = &self.scopes else {
            // Session token: the listener's own library, read and write, nothing else.
            return match (requested, own) {
                (Some(r), Some(o)) if r != o => Err(Denied::PermissionDenied(
                    "a listener may only access their own library".into(),
                )),
                (_, Some(o)) => Ok(o),
                (_, None) => Err(Denied::UserRequired),
            };
        };
        let needed = match access {
            Access::Read => SCOPE_READ,
            Access::Write => SCOPE_WRITE,
        };
        if !self.has_scope(needed) {
            return Err(Denied::PermissionDenied(format!(
                "the token lacks the {needed} scope"
            )));
        }
        let target = requested.or(own).ok_or(Denied::UserRequired)?;
        if Some(target) != own && !self.has_scope(SCOPE_ANY_USER) {
            return Err(Denied::PermissionDenied(format!(
                "acting on another user's library needs the {SCOPE_ANY_USER} scope"
            )));
        }
        Ok(target)
    }
}
