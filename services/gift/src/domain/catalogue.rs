//! The catalogue as operators run it, pure: the events of the programme
//! products are sold in (gift's copy of the mission context's), listing a
//! product in one, restocking it, and the audit record of each change.

use kernel::programme::{Operator, ProgrammeEventId, Title, Window};
use kernel::rfc3339;
use kernel::{Currency, Points, ProductSku};

use super::{ExchangeRefused, IdempotencyKey, Product};

/// An event of the programme as gift keeps it: when its products are sold.
/// The mission context owns the event; gift learns it from
/// `mission.event_scheduled`, and knows `LAUNCH`, which is always open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammeEvent {
    pub id: ProgrammeEventId,
    pub window: Window,
}

impl ProgrammeEvent {
    /// Checks that `sku`, a product of this event, is on sale at `now`.
    ///
    /// # Errors
    /// [`ExchangeRefused::EventNotOpenYet`] or [`ExchangeRefused::EventEnded`].
    pub fn check_on_sale(&self, sku: &ProductSku, now: i64) -> Result<(), ExchangeRefused> {
        if now < self.window.starts_at() {
            return Err(ExchangeRefused::EventNotOpenYet {
                sku: sku.clone(),
                event: self.id.clone(),
                opens_at: self.window.starts_at(),
            });
        }
        match self.window.ends_at() {
            Some(ended_at) if ended_at <= now => {
                Err(ExchangeRefused::EventEnded { sku: sku.clone(), event: self.id.clone(), ended_at })
            }
            _ => Ok(()),
        }
    }
}

/// What an operator lists: a product, sold in an event's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub sku: ProductSku,
    pub name: Title,
    pub price: Points,
    /// The units for sale at first.
    pub stock: u32,
    /// What the vendor bills per unit, in minor units of `currency`; not negative.
    pub vendor_cost: i64,
    pub currency: Currency,
    pub event_id: ProgrammeEventId,
}

/// Why a listing or a restock changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueRefused {
    #[error("event {event} ended at {}; nothing can be listed in it", rfc3339(*ended_at))]
    EventEnded { event: ProgrammeEventId, ended_at: i64 },
    #[error("product {sku} is listed already, otherwise (in event {event})")]
    ListedOtherwise { sku: ProductSku, event: ProgrammeEventId },
    #[error(transparent)]
    StockFull(#[from] StockFull),
    /// The key names an earlier restock of another product or size.
    #[error("idempotency key {key} restocked {sku} by {units} units already; another restock needs another key")]
    RestockKeyReused { key: IdempotencyKey, sku: ProductSku, units: u32 },
}

/// The stock cannot count the units added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sku} cannot take {units} more units: its stock would exceed {max}", max = u32::MAX)]
pub struct StockFull {
    pub sku: ProductSku,
    pub units: u32,
}

impl Listing {
    /// The product this listing puts on sale in `event`, at `now`.
    ///
    /// # Errors
    /// [`CatalogueRefused::EventEnded`]: a product listed in an event that
    /// ended could never be sold.
    pub fn list_in(self, event: &ProgrammeEvent, now: i64) -> Result<Product, CatalogueRefused> {
        if let Some(ended_at) = event.window.ends_at().filter(|ended_at| *ended_at <= now) {
            return Err(CatalogueRefused::EventEnded { event: event.id.clone(), ended_at });
        }
        Ok(Product {
            sku: self.sku,
            name: self.name.into_string(),
            price: self.price,
            stock: self.stock,
            vendor_cost: self.vendor_cost,
            currency: self.currency,
            event_id: self.event_id,
            version: 1,
        })
    }

    /// Whether `product` is what this listing lists, as a retried listing
    /// asks: the same in all but its stock, which exchanges and restocks
    /// have moved since.
    ///
    /// # Errors
    /// [`CatalogueRefused::ListedOtherwise`] when the SKU names another product.
    pub fn check_listed_as(&self, product: &Product) -> Result<(), CatalogueRefused> {
        let same = product.name == self.name.as_str()
            && product.price == self.price
            && product.vendor_cost == self.vendor_cost
            && product.currency == self.currency
            && product.event_id == self.event_id;
        if same {
            Ok(())
        } else {
            Err(CatalogueRefused::ListedOtherwise { sku: product.sku.clone(), event: product.event_id.clone() })
        }
    }
}

/// A restock done under an operator's idempotency key, kept so that the
/// same restock asked again (a retry after a lost answer) adds nothing and
/// answers as the first did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub key: IdempotencyKey,
    pub sku: ProductSku,
    pub units: u32,
    /// The product's stock right after the restock: the first answer's.
    pub stock: u32,
    /// The product's version right after the restock.
    pub version: i64,
    pub restocked_at: i64,
}

impl Restock {
    /// The record of `units` just added to `product` (as it now stands) under `key`.
    pub fn of(key: IdempotencyKey, product: &Product, units: u32, now: i64) -> Self {
        Self { key, sku: product.sku.clone(), units, stock: product.stock, version: product.version, restocked_at: now }
    }

    /// Answers a restock of `units` of `sku` asked again under this
    /// restock's key: `product` (as it stands now) as this restock left it.
    ///
    /// # Errors
    /// [`CatalogueRefused::RestockKeyReused`] when the key is asked to
    /// restock another product, or by another number of units.
    pub fn replay(&self, sku: &ProductSku, units: u32, product: Product) -> Result<Product, CatalogueRefused> {
        if self.sku != *sku || self.units != units {
            return Err(CatalogueRefused::RestockKeyReused {
                key: self.key.clone(),
                sku: self.sku.clone(),
                units: self.units,
            });
        }
        Ok(Product { stock: self.stock, version: self.version, ..product })
    }
}

/// An operator's change to the catalogue, published as its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueChange {
    /// `product` was listed (as it then stood).
    Listed { product: Product, operator: Operator, changed_at: i64 },
    /// `units` were added to `product` (as it then stood).
    Restocked { product: Product, units: u32, operator: Operator, changed_at: i64 },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot proceed should stop right there

    use super::*;

    /// 2026-12-24T00:00:00Z.
    const CHRISTMAS_EVE: i64 = 1_798_070_400_000;
    /// 2027-01-10T00:00:00Z.
    const JAN_10: i64 = 1_799_539_200_000;

    fn winter() -> ProgrammeEvent {
        ProgrammeEvent {
            id: ProgrammeEventId::parse("WINTER-2026").unwrap(),
            window: Window::new(CHRISTMAS_EVE, JAN_10).unwrap(),
        }
    }

    fn sled() -> Listing {
        Listing {
            sku: ProductSku::parse("SNOW-SLED").unwrap(),
            name: Title::parse("Snow sled").unwrap(),
            price: Points::new(300).unwrap(),
            stock: 10,
            vendor_cost: 990,
            currency: Currency::parse("EUR").unwrap(),
            event_id: winter().id,
        }
    }

    #[test]
    fn a_product_is_on_sale_from_its_events_start_until_just_before_its_end() {
        let sku = sled().sku;
        assert!(winter().check_on_sale(&sku, CHRISTMAS_EVE).is_ok());
        assert!(winter().check_on_sale(&sku, JAN_10 - 1).is_ok());
        assert_eq!(
            winter().check_on_sale(&sku, JAN_10).unwrap_err().to_string(),
            "event WINTER-2026 ended at 2027-01-10T00:00:00Z; SNOW-SLED is no longer exchanged"
        );
        assert_eq!(
            winter().check_on_sale(&sku, CHRISTMAS_EVE - 1).unwrap_err().to_string(),
            "event WINTER-2026 opens at 2026-12-24T00:00:00Z; SNOW-SLED is not exchanged before"
        );
    }

    #[test]
    fn a_listing_becomes_a_product_of_its_event_at_version_one() {
        let product = sled().list_in(&winter(), CHRISTMAS_EVE - 1).unwrap();
        assert_eq!((product.sku.as_str(), product.name.as_str(), product.stock), ("SNOW-SLED", "Snow sled", 10));
        assert_eq!((product.vendor_cost, product.event_id.as_str(), product.version), (990, "WINTER-2026", 1));
    }

    #[test]
    fn nothing_is_listed_in_an_event_that_ended() {
        let refused = sled().list_in(&winter(), JAN_10).unwrap_err();
        assert_eq!(refused.to_string(), "event WINTER-2026 ended at 2027-01-10T00:00:00Z; nothing can be listed in it");
    }

    #[test]
    fn a_retried_listing_matches_its_product_whatever_the_stock_and_another_does_not() {
        let mut listed = sled().list_in(&winter(), CHRISTMAS_EVE).unwrap();
        listed.stock = 3;
        assert_eq!(sled().check_listed_as(&listed), Ok(()));
        let dearer = Listing { price: Points::new(301).unwrap(), ..sled() };
        assert_eq!(
            dearer.check_listed_as(&listed).unwrap_err().to_string(),
            "product SNOW-SLED is listed already, otherwise (in event WINTER-2026)"
        );
        let elsewhere = Listing { event_id: ProgrammeEventId::launch(), ..sled() };
        assert!(elsewhere.check_listed_as(&listed).is_err());
    }

    #[test]
    fn a_restock_adds_units_and_refuses_what_the_stock_cannot_count() {
        let mut product = sled().list_in(&winter(), CHRISTMAS_EVE).unwrap();
        product.add_units(5).unwrap();
        assert_eq!((product.stock, product.version), (15, 2));
        let refused = product.add_units(u32::MAX).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "SNOW-SLED cannot take 4294967295 more units: its stock would exceed 4294967295"
        );
        assert_eq!((product.stock, product.version), (15, 2), "unchanged");
    }

    #[test]
    fn a_restock_asked_again_under_its_key_answers_with_the_product_as_it_left_it() {
        let mut product = sled().list_in(&winter(), CHRISTMAS_EVE).unwrap();
        product.add_units(5).unwrap();
        let done = Restock::of(IdempotencyKey::parse("restock-1").unwrap(), &product, 5, CHRISTMAS_EVE);
        product.stock -= 2; // two exchanges since

        let answer = done.replay(&product.sku, 5, product.clone()).unwrap();

        assert_eq!((answer.stock, answer.version), (15, 2));
        assert_eq!(Product { stock: product.stock, ..answer }, product, "otherwise the product as it stands");
    }

    #[test]
    fn a_restock_key_asked_for_another_restock_is_refused() {
        let mut product = sled().list_in(&winter(), CHRISTMAS_EVE).unwrap();
        product.add_units(5).unwrap();
        let done = Restock::of(IdempotencyKey::parse("restock-1").unwrap(), &product, 5, CHRISTMAS_EVE);

        let more = done.replay(&product.sku, 6, product.clone()).unwrap_err();
        let other = done.replay(&ProductSku::parse("SKI-POLES").unwrap(), 5, product).unwrap_err();

        assert_eq!(
            more.to_string(),
            "idempotency key restock-1 restocked SNOW-SLED by 5 units already; another restock needs another key"
        );
        assert!(matches!(other, CatalogueRefused::RestockKeyReused { .. }));
    }
}
