use std::fmt;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

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
