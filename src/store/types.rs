//! How the domain's ids and timestamps are written to and read from each database, so that rows
//! decode straight into domain types and one row struct serves both backends. The two databases
//! keep time differently: PostgreSQL as `timestamptz` (microseconds, exactly a `Timestamp`),
//! SQLite as an INTEGER of microseconds since the Unix epoch. Both compare the same instants in
//! the same order.
use sqlx::{
    Decode, Encode, Postgres, Sqlite, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef},
    sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef},
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{PlayId, Timestamp, TrackId, UserId};

/// A UUID newtype of the domain is its UUID in both databases.
macro_rules! uuid_column {
    ($($id:ty),*) => {$(
        impl Type<Postgres> for $id {
            fn type_info() -> PgTypeInfo {
                <Uuid as Type<Postgres>>::type_info()
            }
        }

        impl PgHasArrayType for $id {
            fn array_type_info() -> PgTypeInfo {
                <Uuid as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $id {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <Uuid as Encode<Postgres>>::encode_by_ref(&self.as_uuid(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $id {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                <Uuid as Decode<Postgres>>::decode(value).map(<$id>::from_uuid)
            }
        }

        impl Type<Sqlite> for $id {
            fn type_info() -> SqliteTypeInfo {
                <Uuid as Type<Sqlite>>::type_info()
            }

            fn compatible(ty: &SqliteTypeInfo) -> bool {
                <Uuid as Type<Sqlite>>::compatible(ty)
            }
        }

        impl Encode<'_, Sqlite> for $id {
            fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
                <Uuid as Encode<Sqlite>>::encode_by_ref(&self.as_uuid(), buf)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $id {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                <Uuid as Decode<Sqlite>>::decode(value).map(<$id>::from_uuid)
            }
        }
    )*};
}

uuid_column!(UserId, TrackId, PlayId);

fn in_range(micros: i64) -> Result<Timestamp, BoxDynError> {
    Timestamp::from_micros(micros).ok_or_else(|| format!("timestamp {micros} out of range").into())
}

/// PostgreSQL's binary `timestamptz` counts microseconds from 2000-01-01T00:00:00Z.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl PgHasArrayType for Timestamp {
    fn array_type_info() -> PgTypeInfo {
        <OffsetDateTime as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        // In range by construction: Timestamp::MIN is far above i64::MIN + the epoch shift.
        <i64 as Encode<Postgres>>::encode_by_ref(&(self.as_micros() - PG_EPOCH_MICROS), buf)
    }

    fn size_hint(&self) -> usize {
        std::mem::size_of::<i64>()
    }
}

impl<'r> Decode<'r, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let pg: i64 = <i64 as Decode<Postgres>>::decode(value)?;
                in_range(
                    pg.checked_add(PG_EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                )
            }
            // Only `raw_sql` reads text; let the time crate parse PostgreSQL's format.
            PgValueFormat::Text => {
                let t = <OffsetDateTime as Decode<Postgres>>::decode(value)?;
                let micros = i64::try_from(t.unix_timestamp_nanos().div_euclid(1000))?;
                in_range(micros)
            }
        }
    }
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Sqlite>>::encode_by_ref(&self.as_micros(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Timestamp {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        in_range(<i64 as Decode<Sqlite>>::decode(value)?)
    }
}
