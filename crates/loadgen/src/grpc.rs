//! Channels to the target, the metadata every call carries, and a codec for
//! bodies encoded beforehand, so any unary method can be driven without its
//! generated stub or reflection.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, BufMut as _, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The server under load: a few HTTP/2 connections, used in turn, and the
/// metadata added to every call (e.g. `authorization: Bearer <jwt>`).
#[derive(Debug, Clone)]
pub struct Target {
    channels: Arc<[Channel]>,
    headers: Arc<[(AsciiMetadataKey, AsciiMetadataValue)]>,
}

impl Target {
    /// Connects `connections` channels to `url` (`http://host:port`); each
    /// is one HTTP/2 connection carrying many calls at once.
    ///
    /// # Errors
    /// When the URL is invalid or nothing answers there.
    pub async fn connect(url: &str, connections: usize, headers: &[(String, String)]) -> anyhow::Result<Self> {
        // Several URLs (comma-separated: replicas of one service) share the
        // connections in turn, each getting at least one.
        let urls: Vec<&str> = url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let count = connections.max(urls.len()).max(1);
        let mut channels = Vec::with_capacity(count);
        for n in 0..count {
            let url = urls.get(n % urls.len().max(1)).copied().unwrap_or(url);
            let endpoint = Endpoint::from_shared(url.to_owned())?
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                // Calls the caller cannot start yet wait in the open-loop driver,
                // where their wait is measured, rather than in the channel.
                .buffer_size(4096)
                .http2_adaptive_window(true);
            channels.push(endpoint.connect().await.map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?);
        }
        let headers = headers
            .iter()
            .map(|(key, value)| {
                let key: AsciiMetadataKey = key.parse().map_err(|_| anyhow::anyhow!("invalid header name {key:?}"))?;
                let value: AsciiMetadataValue =
                    value.parse().map_err(|_| anyhow::anyhow!("invalid value for header {key}"))?;
                Ok((key, value))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { channels: channels.into(), headers: headers.into() })
    }

    /// The channel for call `i`: the connections take calls in turn.
    pub fn channel(&self, i: u64) -> Channel {
        let index = usize::try_from(i % self.channels.len() as u64).unwrap_or_default();
        self.channels[index].clone()
    }

    /// `message` as a request carrying the target's metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        for (key, value) in self.headers.iter() {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        request
    }

    /// Calls the unary method at `path` (`/package.Service/Method`) with a
    /// protobuf body encoded beforehand, and returns the encoded answer.
    ///
    /// # Errors
    /// The call's status.
    pub async fn raw_unary(&self, i: u64, path: &str, body: Bytes) -> Result<Bytes, Status> {
        let path = path.parse().map_err(|_| Status::invalid_argument(format!("{path:?} is not a method path")))?;
        let mut grpc = tonic::client::Grpc::new(self.channel(i));
        grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        grpc.unary(self.request(body), path, RawCodec).await.map(tonic::Response::into_inner)
    }
}

/// Parses `name=value` (or `name: value`) as given to `--header`.
///
/// # Errors
/// When there is no `=` or `:`, or the name is empty.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    // Whichever separator comes first: values may hold either (`Bearer a=b`).
    let at = text.find(['=', ':']).ok_or_else(|| format!("{text:?} is not name=value"))?;
    let (name, value) = (&text[..at], &text[at + 1..]);
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("{text:?} has no header name"));
    }
    Ok((name, value.trim().to_owned()))
}

/// A call's outcome, as the drivers count it.
pub fn outcome<T>(result: Result<T, Status>) -> crate::Outcome {
    result.map(drop).map_err(|status| status.code())
}

/// The outcome, counting `expected` failures as the answer sought (e.g. the
/// fallback while a circuit is open).
pub fn outcome_expecting<T>(result: Result<T, Status>, expected: Code) -> crate::Outcome {
    match result {
        Err(status) if status.code() == expected => Ok(()),
        other => outcome(other),
    }
}

/// Passes protobuf bytes through as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        Self
    }

    fn decoder(&mut self) -> Self::Decoder {
        Self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Decodes hexadecimal (`0a03…`), the form `--body-hex` takes.
///
/// # Errors
/// On an odd length or a character that is not a hex digit.
pub fn decode_hex(text: &str) -> Result<Bytes, String> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !text.len().is_multiple_of(2) {
        return Err("hex has an odd number of digits".into());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("{:?} is not hex", &text[i..i + 2])))
        .collect::<Result<Vec<u8>, String>>()
        .map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_with_equals_or_colon() {
        assert_eq!(parse_header("authorization=Bearer abc").unwrap(), ("authorization".into(), "Bearer abc".into()));
        assert_eq!(parse_header("X-Trace: 1=2").unwrap(), ("x-trace".into(), "1=2".into()));
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
    }

    #[test]
    fn hex_bodies_decode() {
        assert_eq!(decode_hex("0a 03 61 62 63").unwrap().as_ref(), b"\x0a\x03abc");
        assert_eq!(decode_hex("").unwrap().len(), 0);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }

    #[test]
    fn expected_failures_count_as_answers() {
        let unavailable: Result<(), Status> = Err(Status::unavailable("try again later"));
        assert_eq!(outcome_expecting(unavailable, Code::Unavailable), Ok(()));
        let other: Result<(), Status> = Err(Status::internal("boom"));
        assert_eq!(outcome_expecting(other, Code::Unavailable), Err(Code::Internal));
    }
}
