//! The shared kernel every context speaks of: who a player is, how ids
//! look, what points are, how products and prices are named, and what a
//! store port answers when storage fails.
//!
//! Pure values with no IO: a domain that depends on this crate depends on
//! no database, broker, RPC framework or runtime (`tests/architecture.rs`
//! holds every service's domain to that).
//!
//! - [`idempotency`]: callers' idempotency keys.
//! - [`ids`]: customer ids, UUID ids (and [`uuid_id!`] to declare one), derived ids.
//! - [`points`]: amounts of reward points.
//! - [`product`]: product SKUs, currencies and vendors.
//! - [`programme`]: the event programme's ids, windows, operators and titles.
//! - [`store`]: the kinds of store failure a use case acts on.
//! - [`utc`]: times printed for people, in RFC 3339 UTC.

pub mod idempotency;
pub mod ids;
pub mod points;
pub mod product;
pub mod programme;
pub mod store;
pub mod utc;

pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use ids::{CustomerId, IdError, derived_uuid, parse_uuid};
pub use points::{NegativePoints, Points};
pub use product::{Currency, CurrencyError, ProductSku, ProductSkuError, Vendor, VendorError};
pub use store::{ChangedConcurrently, StoreError, StoreErrorKind, StoreFailure};
pub use utc::{rfc3339, utc_date};
/// The UUID type of every id, re-exported for [`uuid_id!`].
pub use uuid::Uuid;
