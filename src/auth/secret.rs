//! A secret that cannot be printed: neither `Display` nor a revealing `Debug`, so no log line,
//! panic message or `{:?}` of a configuration can leak it.
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it (signing or verifying).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output() {
        let secret = Secret::from("hunter2-hunter2");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert_eq!(
            format!("{:?}", Some(secret.clone())),
            "Some(Secret([redacted]))"
        );
        assert_eq!(secret.expose(), "hunter2-hunter2");
    }
}
