use std::fmt;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(Uuid);

        /// The UUID's byte order (as stored and indexed), compared as one big-endian number:
        /// statistics merge sorted id lists of thousands of tracks on every call.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.0.as_u128().cmp(&other.0.as_u128())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// Accepts any textual UUID form; the nil UUID is refused because no real entity has it.
            pub fn parse(s: &str) -> Result<Self, String> {
                match Uuid::try_parse(s) {
                    Ok(u) if u.is_nil() => Err(format!("{} must not be the nil UUID", $what)),
                    Ok(u) => Ok(Self(u)),
                    Err(_) if s.is_empty() => Err(format!("{} is required", $what)),
                    Err(_) => Err(format!("{} must be a UUID", $what)),
                }
            }

            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        /// Canonical lowercase hyphenated form.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// A listener. Users belong to the account service; here they are opaque UUIDs.
    UserId,
    "user id"
);
uuid_id!(
    /// A track. Tracks belong to the catalog service.
    TrackId,
    "track id"
);
uuid_id!(
    /// A play: time-ordered (UUIDv7), so ids of plays recorded later sort later.
    PlayId,
    "play id"
);

impl PlayId {
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_as_their_bytes_do() {
        let ids: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
        for a in &ids {
            for b in &ids {
                assert_eq!(
                    TrackId::from_uuid(*a).cmp(&TrackId::from_uuid(*b)),
                    a.as_bytes().cmp(b.as_bytes())
                );
            }
        }
    }
}
