//! What gift, wallet and settlement say of a product: its SKU, the
//! currency of its price, and the vendor who hands it out and bills for it.

use std::fmt;

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

/// The vendor a gift service hands products out for and settlement pays:
/// 1 to 64 of `a-z`, `0-9`, `-` and `_`, as in `gift` or `acme-toys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vendor(String);

/// Why a text is not a vendor's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    #[error("must not be empty")]
    Empty,
    #[error("may only contain a-z, 0-9, '-' and '_'")]
    BadCharacter,
    #[error("must be at most {max} characters", max = Vendor::MAX_LEN)]
    TooLong,
}

impl Vendor {
    /// The longest name accepted.
    pub const MAX_LEN: usize = 64;
    /// The vendor of a gift service told no other, and of every settlement
    /// recorded before vendors were named: the gift context itself.
    pub const DEFAULT: &str = "gift";

    /// Parses a vendor's name.
    ///
    /// # Errors
    /// When `value` is empty, has other characters, or is longer than 64.
    pub fn parse(value: &str) -> Result<Self, VendorError> {
        if value.is_empty() {
            return Err(VendorError::Empty);
        }
        if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_')) {
            return Err(VendorError::BadCharacter);
        }
        if value.len() > Self::MAX_LEN {
            return Err(VendorError::TooLong);
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Vendor {
    type Err = VendorError;

    fn from_str(value: &str) -> Result<Self, VendorError> {
        Self::parse(value)
    }
}

impl Default for Vendor {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_are_lower_case_names_gift_by_default() {
        assert_eq!(Vendor::default().as_str(), "gift");
        assert_eq!(Vendor::parse(Vendor::DEFAULT), Ok(Vendor::default()));
        assert!(Vendor::parse("acme-toys_2").is_ok());
        assert_eq!(Vendor::parse(""), Err(VendorError::Empty));
        assert_eq!(Vendor::parse("Acme"), Err(VendorError::BadCharacter));
        assert_eq!(Vendor::parse("acme toys"), Err(VendorError::BadCharacter));
        assert_eq!(Vendor::parse(&"a".repeat(65)), Err(VendorError::TooLong));
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
}
