//! Streams of snapshots (`WatchMyPage`: every message is the whole page):
//! the gateway reads them from the service as fast as it sends them and
//! keeps, per stream, only the latest message the client has not taken yet.
//!
//! So a client that reads slowly, or not at all, never holds anything back
//! upstream: the gateway's connection to the service (which every player's
//! calls share) keeps flowing, and a slow reader gets the newest page, not
//! a backlog of old ones. Per stream the gateway holds at most one page.
//!
//! A client that leaves a page untaken for `stall` (its stream window stays
//! shut while it answers PINGs) is stalled: the stream to the service is
//! dropped, and `on_stall` is called — the gateway closes that client's
//! connection, since HTTP/2 gives a server no way to end a stream whose
//! reader will not read.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::{HeaderMap, Response};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt as _;
use platform::CancellationToken;
use tonic::Status;
use tonic::body::Body;

/// The largest message a snapshot stream may carry: a page is kilobytes.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// What the pump has for the client.
#[derive(Debug, Default)]
struct Slot {
    /// The latest whole message not taken yet (its gRPC frame).
    latest: Option<Bytes>,
    /// The end: trailers (or an error) once the service's stream ended.
    end: Option<Result<HeaderMap, Status>>,
    /// Set once `end` was handed over.
    done: bool,
    waker: Option<Waker>,
}

/// Reads `response`'s stream in a task of its own and answers with a body
/// that yields only the latest message; `on_stall` runs if the client
/// leaves a message untaken for `stall`.
pub fn coalesce(response: Response<Body>, stall: Duration, on_stall: impl FnOnce() + Send + 'static) -> Response<Body> {
    // Refused at once (trailers only): there is no stream to read.
    if response.headers().contains_key("grpc-status") {
        return response;
    }
    let (parts, upstream) = response.into_parts();
    let slot = Arc::new(Mutex::new(Slot::default()));
    let gone = CancellationToken::new();
    tokio::spawn(pump(upstream, slot.clone(), gone.clone(), stall, on_stall));
    Response::from_parts(parts, Body::new(Latest { slot, gone }))
}

async fn pump(
    mut upstream: Body,
    slot: Arc<Mutex<Slot>>,
    gone: CancellationToken,
    stall: Duration,
    on_stall: impl FnOnce(),
) {
    let mut partial = BytesMut::new();
    // When the message now waiting was first left untaken.
    let mut untaken_since: Option<tokio::time::Instant> = None;
    let end = loop {
        let deadline = untaken_since.map(|since| since + stall);
        let frame = tokio::select! {
            biased;
            () = gone.cancelled() => return,
            () = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                if is_taken(&slot) {
                    untaken_since = None;
                    continue;
                }
                on_stall();
                break Err(Status::unavailable("the watch was closed: its reader took no page for too long"));
            }
            frame = upstream.frame() => frame,
        };
        match frame {
            None => break Ok(HeaderMap::new()),
            Some(Err(status)) => break Err(status),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    partial.extend_from_slice(&data);
                    if partial.len() > MAX_MESSAGE + 5 {
                        break Err(Status::internal("a watched message exceeded the gateway's limit"));
                    }
                    while let Some(message) = whole_message(&mut partial) {
                        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                        // A message waits from when the slot stopped being
                        // empty: one replacing another still untaken does
                        // not start the wait again.
                        if slot.latest.replace(message).is_none() {
                            untaken_since = Some(tokio::time::Instant::now());
                        }
                        if let Some(waker) = slot.waker.take() {
                            waker.wake();
                        }
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        break Ok(trailers);
                    }
                }
            },
        }
    };
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    slot.end = Some(end);
    if let Some(waker) = slot.waker.take() {
        waker.wake();
    }
}

fn is_taken(slot: &Mutex<Slot>) -> bool {
    slot.lock().unwrap_or_else(PoisonError::into_inner).latest.is_none()
}

/// Splits one whole gRPC message (prefix and payload) off `partial`.
fn whole_message(partial: &mut BytesMut) -> Option<Bytes> {
    if partial.len() < 5 {
        return None;
    }
    let length = usize::try_from((&partial[1..5]).get_u32()).unwrap_or(usize::MAX);
    if partial.len() < 5 + length {
        return None;
    }
    Some(partial.split_to(5 + length).freeze())
}

/// The client's side: the latest message, then the end.
struct Latest {
    slot: Arc<Mutex<Slot>>,
    /// Cancelled when the client's stream is gone, which ends the pump.
    gone: CancellationToken,
}

impl Drop for Latest {
    fn drop(&mut self) {
        self.gone.cancel();
    }
}

impl HttpBody for Latest {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(message) = slot.latest.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        if slot.done {
            return Poll::Ready(None);
        }
        match slot.end.take() {
            Some(Ok(trailers)) => {
                slot.done = true;
                if trailers.is_empty() { Poll::Ready(None) } else { Poll::Ready(Some(Ok(Frame::trailers(trailers)))) }
            }
            Some(Err(status)) => {
                slot.done = true;
                // Trailers carrying the status: the client hears why.
                let mut trailers = HeaderMap::new();
                let _ = status.add_header(&mut trailers);
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner).done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> Bytes {
        let mut frame = vec![0];
        frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(payload);
        frame.into()
    }

    /// A body whose frames come from a channel, as a service's stream does.
    fn channel_body() -> (tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Status>>, Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        (tx, Body::new(http_body_util::StreamBody::new(stream)))
    }

    #[tokio::test]
    async fn a_slow_reader_gets_the_latest_message_not_a_backlog() {
        let (upstream, body) = channel_body();
        let response = coalesce(Response::new(body), Duration::from_secs(60), || {});
        let mut body = response.into_body();
        for page in [b"page-1".as_slice(), b"page-2", b"page-3"] {
            upstream.send(Ok(Frame::data(framed(page)))).await.unwrap();
        }
        // A message split across frames is put back together.
        let whole = framed(b"page-4");
        upstream.send(Ok(Frame::data(whole.slice(..3)))).await.unwrap();
        upstream.send(Ok(Frame::data(whole.slice(3..)))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, framed(b"page-4"));
        drop(upstream);
        assert!(body.frame().await.is_none(), "the stream ends when the service's does");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_takes_nothing_is_declared_stalled_and_told_why() {
        let (upstream, body) = channel_body();
        let (stalled_tx, stalled) = tokio::sync::oneshot::channel();
        let response = coalesce(Response::new(body), Duration::from_secs(10), move || {
            let _ = stalled_tx.send(());
        });
        let mut body = response.into_body();
        upstream.send(Ok(Frame::data(framed(b"page-1")))).await.unwrap();
        // Taken: the reader reads.
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), framed(b"page-1"));
        upstream.send(Ok(Frame::data(framed(b"page-2")))).await.unwrap();
        upstream.send(Ok(Frame::data(framed(b"page-3")))).await.unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        stalled.await.expect("the stall was reported");
        assert!(upstream.is_closed(), "the service's stream was dropped");
        // What is left: the latest page, then the reason.
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), framed(b"page-3"));
        let trailers = body.frame().await.unwrap().unwrap().into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "14");
    }
}
