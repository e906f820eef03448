//! Free-text fields. Lengths are counted in characters (Unicode scalar values), not bytes, so an
//! accent or an emoji counts as one.

/// Where a play started from (album, playlist, radio, search...): at most 50 characters, no
/// control characters. Empty means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlaySource(String);

pub const MAX_SOURCE_CHARS: usize = 50;
pub const MAX_NOTES_CHARS: usize = 1000;
pub const MAX_REQUEST_ID_CHARS: usize = 64;

impl PlaySource {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.chars().count() > MAX_SOURCE_CHARS {
            return Err(format!(
                "source must be at most {MAX_SOURCE_CHARS} characters"
            ));
        }
        if s.chars().any(char::is_control) {
            return Err("source must not contain control characters".into());
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A listener's notes on a liked track: at most 1000 characters. Line breaks and tabs are
/// allowed; other control characters (NUL included) are not, since they only ever arrive by
/// accident or malice and break the clients that display notes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notes(String);

impl Notes {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.chars().count() > MAX_NOTES_CHARS {
            return Err(format!(
                "notes must be at most {MAX_NOTES_CHARS} characters"
            ));
        }
        if s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(
                "notes must not contain control characters other than line breaks and tabs".into(),
            );
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An idempotency key (AIP-155): 1 to 64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Empty input means "no key".
    pub fn parse_optional(s: &str) -> Result<Option<Self>, String> {
        if s.is_empty() {
            return Ok(None);
        }
        if s.len() > MAX_REQUEST_ID_CHARS {
            return Err(format!(
                "request_id must be at most {MAX_REQUEST_ID_CHARS} characters"
            ));
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err("request_id must be printable ASCII".into());
        }
        Ok(Some(Self(s.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_count_characters_not_bytes() {
        let thousand_emoji = "🎵".repeat(1000);
        assert!(Notes::parse(&thousand_emoji).is_ok());
        assert!(Notes::parse(&format!("{thousand_emoji}é")).is_err());
    }

    #[test]
    fn notes_refuse_nul_but_keep_line_breaks() {
        assert!(Notes::parse("a\0b").is_err());
        assert!(Notes::parse("line one\nline two\ttab").is_ok());
    }

    #[test]
    fn request_ids_are_printable_ascii_up_to_64() {
        assert_eq!(RequestId::parse_optional("").unwrap(), None);
        assert!(
            RequestId::parse_optional(&"a".repeat(64))
                .unwrap()
                .is_some()
        );
        assert!(RequestId::parse_optional(&"a".repeat(65)).is_err());
        assert!(RequestId::parse_optional("é").is_err());
        assert!(RequestId::parse_optional("a\nb").is_err());
    }

    #[test]
    fn sources_are_at_most_fifty_characters() {
        assert!(PlaySource::parse(&"ü".repeat(50)).is_ok());
        assert!(PlaySource::parse(&"ü".repeat(51)).is_err());
        assert!(PlaySource::parse("radio\u{7}").is_err());
    }
}
