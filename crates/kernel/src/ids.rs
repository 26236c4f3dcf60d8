//! Who a player is and how the system's ids look: parsed once at the edge of
//! a service, so the domain never sees a malformed one.

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

/// Declares a UUID-backed id newtype of a context.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($crate::Uuid);

        impl $name {
            /// A new id, unique and ordered by creation time (UUIDv7), so
            /// that stores append it to their indexes.
            pub fn generate() -> Self {
                Self($crate::Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub fn from_uuid(uuid: $crate::Uuid) -> Self {
                Self(uuid)
            }

            /// Parses the canonical text form.
            ///
            /// # Errors
            /// When `value` is empty or not a UUID.
            pub fn parse(value: &str) -> Result<Self, $crate::IdError> {
                $crate::parse_uuid(value).map(Self)
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> $crate::Uuid {
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
    fn uuids_must_be_uuids() {
        assert_eq!(parse_uuid(""), Err(IdError::Empty));
        assert_eq!(parse_uuid("nope"), Err(IdError::NotUuid));
        assert!(parse_uuid("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
    }
}
