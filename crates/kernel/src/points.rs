//! What a reward is worth: whole points, never negative.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_never_negative() {
        assert_eq!(Points::new(-1), Err(NegativePoints(-1)));
        assert_eq!(Points::new(0).map(Points::value), Ok(0));
        assert!(Points::new(5).unwrap() > Points::new(3).unwrap());
    }
}
