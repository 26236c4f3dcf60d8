//! What the gRPC adapters of every service share: turning request fields
//! into domain values with precise INVALID_ARGUMENT messages, storage
//! failures into statuses that leak nothing, and telling a call that never
//! reached its server from one that may have.

use tonic::Status;

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
}
