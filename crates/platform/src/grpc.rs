//! What the gRPC adapters of every service share: turning request fields
//! into domain values with precise INVALID_ARGUMENT messages, storage
//! failures into statuses that leak nothing, and telling a call that never
//! reached its server from one that may have.

use std::time::{Duration, Instant};

use tonic::Status;

/// The largest request message a service decodes (and the gateway forwards
/// by default). Every message of the contracts is a few hundred bytes; the
/// limit only has to stop a caller from making a service buffer megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest header list (HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`: names,
/// values and 32 bytes per field) a service or the gateway accepts, and
/// advertises. One figure for both: the gateway forwards a call's headers as
/// they came, so a list it accepted must fit every service behind it. A
/// token and a trace context take a few kilobytes.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

use crate::db::{DbError, Failure};
use crate::store::{StoreError, StoreErrorKind};
use kernel::IdError;

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

/// What a caller reads while the service's store is down or restarting.
pub const STORE_UNAVAILABLE: &str = "the service's store is unavailable; try again later";
/// What a caller reads while the store's locks or connections are all taken.
pub const STORE_BUSY: &str = "the service's store is busy; try again later";
/// What a caller reads when a concurrent request changed what the call read.
pub const STORE_CONFLICT: &str = "a concurrent request changed the same data; try again";

/// A storage failure as the caller sees it, with no internals: UNAVAILABLE
/// while the store is away or busy (try again later, elsewhere), ABORTED on
/// a concurrency conflict (try the whole call again), INTERNAL otherwise.
/// The cause is logged here, once, with its chain; an outage at warn level,
/// since the store's own health entry already says so.
pub fn storage_failure(error: &DbError) -> Status {
    let cause = std::error::Error::source(error);
    match error.failure() {
        Failure::Unavailable => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::unavailable(STORE_UNAVAILABLE)
        }
        Failure::Busy => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::unavailable(STORE_BUSY)
        }
        Failure::Conflict => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::aborted(STORE_CONFLICT)
        }
        Failure::Other => {
            tracing::error!(error = %error, cause = ?cause, "storage failure");
            Status::internal("the service could not complete the request")
        }
    }
}

/// A store port's failure as the caller sees it, with the same codes and
/// words as [`storage_failure`]; the cause is logged here, once.
pub fn store_failure(error: &StoreError) -> Status {
    let cause = std::error::Error::source(error);
    match error.kind() {
        StoreErrorKind::Unavailable => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::unavailable(STORE_UNAVAILABLE)
        }
        StoreErrorKind::Busy => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::unavailable(STORE_BUSY)
        }
        StoreErrorKind::Conflict | StoreErrorKind::Duplicate => {
            tracing::warn!(error = %error, cause = ?cause, "storage failure");
            Status::aborted(STORE_CONFLICT)
        }
        StoreErrorKind::Corrupt | StoreErrorKind::Failed => {
            tracing::error!(error = %error, cause = ?cause, "storage failure");
            Status::internal("the service could not complete the request")
        }
    }
}

/// Whether a transport failure proves the call never reached the server, so
/// that sending it again (elsewhere, or later) cannot apply it twice: the
/// connection was refused, the call was still queued when its connection
/// closed (hyper cancels it unsent), or the server refused the stream before
/// running anything (HTTP/2 REFUSED_STREAM, as a draining server answers
/// streams it will not serve). A reset or closed connection after sending
/// proves nothing: the call may have run.
pub fn never_reached(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound)
        {
            return true;
        }
        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_canceled) {
            return true;
        }
        if error.downcast_ref::<h2::Error>().and_then(h2::Error::reason) == Some(h2::Reason::REFUSED_STREAM) {
            return true;
        }
        if error.to_string().contains("tcp connect error") {
            return true;
        }
        source = error.source();
    }
    false
}

/// When the caller stops waiting: its `grpc-timeout`, counted from now
/// (call it first thing in a handler). `None` when the caller set none.
pub fn deadline_of<T>(request: &tonic::Request<T>) -> Option<Instant> {
    let timeout = parse_timeout(request.metadata().get("grpc-timeout")?.to_str().ok()?)?;
    Instant::now().checked_add(timeout)
}

/// Parses a `grpc-timeout` value; `None` when it is not one.
pub fn parse_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok().filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// A `grpc-timeout` value for `left`, to the microsecond while it fits.
pub fn encode_timeout(left: Duration) -> String {
    let micros = left.as_micros();
    if micros < 100_000_000 {
        format!("{micros}u")
    } else if left.as_millis() < 100_000_000 {
        format!("{}m", left.as_millis())
    } else {
        format!("{}S", left.as_secs().min(99_999_999))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("transport error")]
    struct Transport(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn refused_connections_and_refused_streams_never_reached_the_server() {
        let refused = Transport(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
        assert!(never_reached(&refused));
        let stream_refused = Transport(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM)));
        assert!(never_reached(&stream_refused));
    }

    #[test]
    fn resets_and_cut_connections_may_have_reached_it() {
        let reset = Transport(Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset)));
        assert!(!never_reached(&reset));
        let cancelled = Transport(Box::new(h2::Error::from(h2::Reason::CANCEL)));
        assert!(!never_reached(&cancelled));
        assert!(!never_reached(&Transport("connection closed".into())));
    }

    #[test]
    fn storage_failures_tell_an_outage_from_a_busy_store_a_conflict_and_a_fault() {
        use diesel::result::{DatabaseErrorKind, Error};
        let closed =
            DbError::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, Box::new("gone".to_owned())));
        let restarting = DbError::Query(Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("FATAL: the database system is starting up".to_owned()),
        ));
        let locked =
            DbError::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, Box::new("database is locked".to_owned())));
        let serialization =
            DbError::Query(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, Box::new("x".to_owned())));
        let unique = DbError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new("x".to_owned())));
        let cases = [
            (DbError::Unavailable("connection refused".into()), tonic::Code::Unavailable, STORE_UNAVAILABLE),
            (closed, tonic::Code::Unavailable, STORE_UNAVAILABLE),
            (restarting, tonic::Code::Unavailable, STORE_UNAVAILABLE),
            (locked, tonic::Code::Unavailable, STORE_BUSY),
            (serialization, tonic::Code::Aborted, STORE_CONFLICT),
            (DbError::Conflict { entity: "wallet entry", key: "e".into() }, tonic::Code::Aborted, STORE_CONFLICT),
            (unique, tonic::Code::Internal, "the service could not complete the request"),
            (DbError::Panicked, tonic::Code::Internal, "the service could not complete the request"),
        ];
        for (error, code, message) in cases {
            let status = storage_failure(&error);
            assert_eq!((status.code(), status.message()), (code, message), "{error:?}");
        }
        let shared = DbError::GroupCommit(std::sync::Arc::new(DbError::Unavailable("down".into())));
        assert_eq!(storage_failure(&shared).code(), tonic::Code::Unavailable);
    }

    #[test]
    fn timeouts_parse_and_encode_in_every_unit() {
        assert_eq!(parse_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("5u"), Some(Duration::from_micros(5)));
        for bad in ["", "m", "10", "10x", "123456789m", "-1m", "+1m", "1.5S"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
        for left in [Duration::from_micros(1), Duration::from_millis(1500), Duration::from_secs(500_000)] {
            let encoded = encode_timeout(left);
            assert!(encoded.len() <= 9, "{encoded}");
            let back = parse_timeout(&encoded).unwrap();
            assert!(back <= left && left - back < Duration::from_secs(1), "{encoded}");
        }
    }
}
