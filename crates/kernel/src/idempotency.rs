//! A caller's name for one request it may repeat: the same key, the same
//! answer, never a second effect.

/// The caller's name for one request it may repeat (an exchange, a restock):
/// 1 to 128 printable ASCII characters, no spaces. A context does what a key
/// asks at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a text is not an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("may only contain printable ASCII characters other than space")]
    BadCharacter,
    #[error("must be at most {max} characters", max = IdempotencyKey::MAX_LEN)]
    TooLong,
}

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 128;

    /// Parses an idempotency key.
    ///
    /// # Errors
    /// When `value` is empty, has spaces or non-printable or non-ASCII
    /// characters, or is longer than 128.
    pub fn parse(value: &str) -> Result<Self, IdempotencyKeyError> {
        if value.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::BadCharacter);
        }
        if value.len() > Self::MAX_LEN {
            return Err(IdempotencyKeyError::TooLong);
        }
        Ok(Self(value.to_owned()))
    }

    /// The key naming what a UUID names: its text is always a key.
    pub fn of_uuid(id: uuid::Uuid) -> Self {
        Self(id.to_string())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
