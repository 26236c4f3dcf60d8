//! The shared kernel every context speaks of: who a player is, how ids look,
//! and what points are. Parsed once at the edge of a service, so the domain
//! never sees a malformed value.

use std::fmt;

use uuid::Uuid;

/// Why a value is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("may only contain letters, digits, '-', '_' and '.'")]
    BadCharacter,
    #[error("must be a UUID")]
    NotUuid,
}

/// A player, as the game identifies them: 1 to 64 letters, digits, `-`, `_` or `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(String);

impl CustomerId {
    /// The longest customer id accepted.
    pub const MAX_LEN: usize = 64;

    /// Parses a customer id.
    ///
    /// # Errors
    /// When `value` is empty, too long or has other characters.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Err(IdError::Empty);
        }
        if value.len() > Self::MAX_LEN {
            return Err(IdError::TooLong { max: Self::MAX_LEN });
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
            return Err(IdError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of what `parent` gives rise to (its reward, its event…), named
/// `name`: the same pair always gives the same id, so a retried step
/// re-creates the same thing, and different pairs practically never meet.
///
/// A UUIDv8 that begins with the parent's first 48 bits (a UUIDv7's
/// millisecond timestamp) followed by 74 bits of SHA-1 over the pair: ids
/// derived from time-ordered ids are time-ordered too, so every store
/// appends them at the end of its indexes instead of dirtying a random
/// page per row (UUIDv5 ids did: measured, most of the stores' WAL writes).
pub fn derived_uuid(parent: Uuid, name: &[u8]) -> Uuid {
    let mut bytes = Uuid::new_v5(&parent, name).into_bytes();
    bytes[..6].copy_from_slice(&parent.as_bytes()[..6]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// Parses an id this system generated (a UUID), in its canonical form.
///
/// # Errors
/// When `value` is empty or not a UUID.
pub fn parse_uuid(value: &str) -> Result<Uuid, IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    Uuid::parse_str(value).map_err(|_| IdError::NotUuid)
}

/// An amount of reward points: whole, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Points(i64);

/// Why a number is not an amount of points.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("points must not be negative, got {0}")]
pub struct NegativePoints(pub i64);

impl Points {
    /// Points from a stored or transmitted number.
    ///
    /// # Errors
    /// When `value` is negative.
    pub fn new(value: i64) -> Result<Self, NegativePoints> {
        if value < 0 { Err(NegativePoints(value)) } else { Ok(Self(value)) }
    }

    /// The number of points.
    pub fn value(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} points", self.0)
    }
}

/// A gift product's stock-keeping unit, as gift, wallet and settlement all
/// speak of it: 1 to 64 of `A-Z`, `0-9`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductSku(String);

/// Why a text is not a product SKU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductSkuError {
    #[error("must not be empty")]
    Empty,
    #[error("may only contain A-Z, 0-9, '-' and '_'")]
    BadCharacter,
    #[error("must be at most {max} characters", max = ProductSku::MAX_LEN)]
    TooLong,
}

impl ProductSku {
    /// The longest SKU accepted.
    pub const MAX_LEN: usize = 64;

    /// Parses a SKU.
    ///
    /// # Errors
    /// When `value` is empty, has other characters, or is longer than 64.
    pub fn parse(value: &str) -> Result<Self, ProductSkuError> {
        if value.is_empty() {
            return Err(ProductSkuError::Empty);
        }
        if !value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_')) {
            return Err(ProductSkuError::BadCharacter);
        }
        if value.len() > Self::MAX_LEN {
            return Err(ProductSkuError::TooLong);
        }
        Ok(Self(value.to_owned()))
    }

    /// The SKU as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductSku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 currency code: three upper-case letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

/// Why a text is not a currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 3 upper-case letters")]
pub struct CurrencyError;

impl Currency {
    /// Parses a currency code.
    ///
    /// # Errors
    /// When `value` is not exactly three ASCII upper-case letters.
    pub fn parse(value: &str) -> Result<Self, CurrencyError> {
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(CurrencyError)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a UUID-backed id newtype of a context.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id, unique and ordered by creation time (UUIDv7), so
            /// that stores append it to their indexes.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// Parses the canonical text form.
            ///
            /// # Errors
            /// When `value` is empty or not a UUID.
            pub fn parse(value: &str) -> Result<Self, $crate::kernel::IdError> {
                $crate::kernel::parse_uuid(value).map(Self)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_distinct_and_keep_their_parents_order() {
        let earlier = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = Uuid::now_v7();
        let reward = derived_uuid(earlier, b"Reward");
        assert_eq!(reward, derived_uuid(earlier, b"Reward"));
        assert_ne!(reward, derived_uuid(earlier, b"RewardAllocated"));
        assert_ne!(reward, derived_uuid(later, b"Reward"));
        assert_eq!(reward.get_version_num(), 8);
        assert_eq!(reward.get_variant(), uuid::Variant::RFC4122);
        // Sorted as text, as the stores' indexes sort them.
        assert!(derived_uuid(earlier, b"Reward").to_string() < derived_uuid(later, b"Reward").to_string());
        assert!(derived_uuid(earlier, b"z").to_string() < derived_uuid(later, b"a").to_string());
    }

    #[test]
    fn customer_ids_accept_game_style_names() {
        for ok in ["player-42", "a", "P_1.x", &"x".repeat(64)] {
            assert_eq!(CustomerId::parse(ok).map(|c| c.to_string()), Ok(ok.to_owned()));
        }
    }

    #[test]
    fn customer_ids_reject_empty_long_and_odd_values() {
        assert_eq!(CustomerId::parse(""), Err(IdError::Empty));
        assert_eq!(CustomerId::parse(&"x".repeat(65)), Err(IdError::TooLong { max: 64 }));
        assert_eq!(CustomerId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(CustomerId::parse("é"), Err(IdError::BadCharacter));
    }

    #[test]
    fn points_are_never_negative() {
        assert_eq!(Points::new(-1), Err(NegativePoints(-1)));
        assert_eq!(Points::new(0).map(Points::value), Ok(0));
        assert!(Points::new(5).unwrap() > Points::new(3).unwrap());
    }

    #[test]
    fn skus_are_upper_case_codes() {
        assert!(ProductSku::parse("PLUSH-MASCOT_2").is_ok());
        assert_eq!(ProductSku::parse(""), Err(ProductSkuError::Empty));
        assert_eq!(ProductSku::parse("plush"), Err(ProductSkuError::BadCharacter));
        assert_eq!(ProductSku::parse(&"A".repeat(65)), Err(ProductSkuError::TooLong));
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["", "eur", "EURO", "E1R"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError), "{bad}");
        }
    }

    #[test]
    fn uuids_must_be_uuids() {
        assert_eq!(parse_uuid(""), Err(IdError::Empty));
        assert_eq!(parse_uuid("nope"), Err(IdError::NotUuid));
        assert!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
    }
}
