use jiff::Timestamp as JiffTimestamp;

/// Longest play accepted: one day.
pub const MAX_PLAYED_FOR_SECONDS: u32 = 86_400;

/// A point in time with microsecond precision (what PostgreSQL stores), as microseconds since the
/// Unix epoch. Both backends store and compare exactly this number, so orderings agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

const MICROS: i64 = 1_000_000;

impl Timestamp {
    /// Earliest instant accepted anywhere: 0001-01-01T00:00:00Z (the protobuf Timestamp range).
    pub const MIN: Timestamp = Timestamp(-62_135_596_800 * MICROS);
    /// Latest instant accepted anywhere: 9999-12-31T23:59:59.999999Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799 * MICROS + 999_999);

    pub fn now() -> Self {
        let now = JiffTimestamp::now();
        Self(now.as_microsecond())
    }

    pub fn from_micros(micros: i64) -> Option<Self> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&micros)
            .then_some(Self(micros))
    }

    /// Sub-microsecond digits are truncated, as PostgreSQL would round them away anyway; doing it
    /// here keeps both backends byte-identical.
    pub fn from_parts(seconds: i64, nanos: i32) -> Result<Self, String> {
        if !(0..1_000_000_000).contains(&nanos) {
            return Err("nanos must be between 0 and 999999999".into());
        }
        seconds
            .checked_mul(MICROS)
            .and_then(|m| m.checked_add(i64::from(nanos) / 1000))
            .and_then(Self::from_micros)
            .ok_or_else(|| "must be between 0001-01-01 and 9999-12-31".to_string())
    }

    pub fn as_micros(&self) -> i64 {
        self.0
    }

    pub fn seconds(&self) -> i64 {
        self.0.div_euclid(MICROS)
    }

    pub fn subsec_nanos(&self) -> i32 {
        // rem_euclid of MICROS is < 1e6, so times 1000 fits an i32.
        (self.0.rem_euclid(MICROS) * 1000) as i32
    }

    pub fn saturating_add_seconds(&self, seconds: i64) -> Self {
        Self(
            self.0
                .saturating_add(seconds.saturating_mul(MICROS))
                .clamp(Self::MIN.0, Self::MAX.0),
        )
    }

    pub fn to_jiff(self) -> JiffTimestamp {
        // In range by construction: MIN..=MAX is inside jiff's range.
        JiffTimestamp::from_microsecond(self.0).unwrap_or(JiffTimestamp::UNIX_EPOCH)
    }

    pub fn from_jiff(t: JiffTimestamp) -> Self {
        Self(t.as_microsecond().clamp(Self::MIN.0, Self::MAX.0))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.to_jiff(), f)
    }
}
