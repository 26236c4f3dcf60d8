//! What the gRPC adapters of every service share: turning request fields
//! into domain values with precise INVALID_ARGUMENT messages, and storage
//! failures into statuses that leak nothing.

use tonic::Status;

/// The largest request message a service decodes (and the gateway forwards
/// by default). Every message of the contracts is a few hundred bytes; the
/// limit only has to stop a caller from making a service buffer megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

use crate::db::DbError;
use crate::kernel::IdError;

/// Turns a field's parse error into INVALID_ARGUMENT naming the field.
pub fn invalid(field: &str, error: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {error}"))
}

/// Parses a request field with `parse`, naming the field on failure.
///
/// # Errors
/// INVALID_ARGUMENT "`field`: reason".
pub fn field<T>(field: &str, value: &str, parse: impl FnOnce(&str) -> Result<T, IdError>) -> Result<T, Status> {
    parse(value).map_err(|e| invalid(field, e))
}

/// A storage failure as the caller sees it: retryable, with no internals.
/// The cause is logged here, once, with its chain.
pub fn storage_failure(error: &DbError) -> Status {
    tracing::error!(error = %error, cause = ?std::error::Error::source(error), "storage failure");
    if error.is_transient() {
        Status::unavailable("the service's storage is busy; try again later")
    } else {
        Status::internal("the service could not complete the request")
    }
}
