//! What attackers put on the wire: gRPC requests for the `h2` client (which
//! lets a caller hold a stream's window at zero, or reset a stream it just
//! opened), and raw HTTP/2 frames for what no well-behaved client sends
//! (streams beyond the server's `MAX_CONCURRENT_STREAMS`, header blocks of
//! any size).

use bytes::{BufMut as _, Bytes, BytesMut};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `GetMyPage` and `WatchMyPage`, the paths attackers call.
pub const GET_MY_PAGE: &str = "/game.mypage.v1.MyPageService/GetMyPage";
pub const WATCH_MY_PAGE: &str = "/game.mypage.v1.MyPageService/WatchMyPage";

/// A gRPC message frame: the 5-byte prefix (uncompressed, length) and `message`.
pub fn grpc_frame(message: &impl prost::Message) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + message.encoded_len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.encoded_len()).unwrap_or(u32::MAX));
    // Encoding into a buffer sized for it cannot fail.
    let _ = message.encode(&mut frame);
    frame.freeze()
}

/// The body of a `GetMyPage` or `WatchMyPage` call for `customer`.
pub fn my_page_body(customer: &str) -> Bytes {
    grpc_frame(&api::game::mypage::v1::GetMyPageRequest { customer_id: customer.to_owned() })
}

/// The head of a gRPC call to `path` on `authority`, with `authorization:
/// Bearer token` when there is one and any `extra` headers.
///
/// # Errors
/// When a header value is not valid (never for tokens and ASCII values).
pub fn grpc_request(
    authority: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, String)],
) -> anyhow::Result<http::Request<()>> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in extra {
        request = request.header(*name, value);
    }
    Ok(request.body(())?)
}

/// Frame types and flags used here (RFC 9113 §6).
pub mod frame {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    /// SETTINGS identifiers.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// One frame: its 9-byte header, then `payload`.
pub fn encode_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut bytes = Vec::with_capacity(9 + payload.len());
    bytes.extend_from_slice(&length.to_be_bytes()[1..]);
    bytes.push(kind);
    bytes.push(flags);
    bytes.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A SETTINGS frame with `settings` (identifier, value).
pub fn settings(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(settings.len() * 6);
    for (id, value) in settings {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    encode_frame(frame::SETTINGS, 0, 0, &payload)
}

/// An HPACK header block of literal fields (never indexed, no Huffman
/// coding): larger than a real client's, but exact in size and needing no
/// state shared with the server's decoder.
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x10); // literal, never indexed, new name
        hpack_string(&mut block, name.as_bytes());
        hpack_string(&mut block, value.as_bytes());
    }
    block
}

fn hpack_string(block: &mut Vec<u8>, text: &[u8]) {
    hpack_integer(block, 7, 0, text.len());
    block.extend_from_slice(text);
}

/// An HPACK integer with an `prefix_bits`-bit prefix (RFC 7541 §5.1).
fn hpack_integer(block: &mut Vec<u8>, prefix_bits: u32, first_byte_flags: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        block.push(first_byte_flags | u8::try_from(value).unwrap_or(u8::MAX));
        return;
    }
    block.push(first_byte_flags | u8::try_from(max).unwrap_or(u8::MAX));
    let mut rest = value - max;
    while rest >= 128 {
        block.push(u8::try_from(rest % 128).unwrap_or_default() | 0x80);
        rest /= 128;
    }
    block.push(u8::try_from(rest).unwrap_or_default());
}

/// The HEADERS (and CONTINUATION) frames carrying `block` on `stream`, cut
/// at `max_frame` bytes each.
pub fn headers_frames(stream: u32, block: &[u8], end_stream: bool, max_frame: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(block.len() + 64);
    let chunks: Vec<&[u8]> = if block.is_empty() { vec![&[]] } else { block.chunks(max_frame).collect() };
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.into_iter().enumerate() {
        let kind = if index == 0 { frame::HEADERS } else { frame::CONTINUATION };
        let mut flags = if index == last { frame::END_HEADERS } else { 0 };
        if index == 0 && end_stream {
            flags |= frame::END_STREAM;
        }
        bytes.extend(encode_frame(kind, flags, stream, chunk));
    }
    bytes
}

/// The request fields of a gRPC call, for [`header_block`].
pub fn grpc_fields<'a>(authority: &'a str, path: &'a str, token: Option<&'a str>) -> Vec<(String, String)> {
    let mut fields = vec![
        (":method".to_owned(), "POST".to_owned()),
        (":scheme".to_owned(), "http".to_owned()),
        (":authority".to_owned(), authority.to_owned()),
        (":path".to_owned(), path.to_owned()),
        ("content-type".to_owned(), "application/grpc".to_owned()),
        ("te".to_owned(), "trailers".to_owned()),
    ];
    if let Some(token) = token {
        fields.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    fields
}

/// A frame read back from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The SETTINGS parameters of a SETTINGS frame.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|s| (u16::from_be_bytes([s[0], s[1]]), u32::from_be_bytes([s[2], s[3], s[4], s[5]])))
            .collect()
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> Option<u32> {
        let at = match self.kind {
            frame::RST_STREAM => 0,
            frame::GOAWAY => 4,
            _ => return None,
        };
        let code = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([code[0], code[1], code[2], code[3]]))
    }

    /// The debug data of a GOAWAY frame, as text, with every run of digits
    /// written `N` (a reason like "cut off for 9804 ms more" is one reason).
    pub fn goaway_debug(&self) -> String {
        if self.kind != frame::GOAWAY {
            return String::new();
        }
        let text = String::from_utf8_lossy(self.payload.get(8..).unwrap_or_default()).into_owned();
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if !c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('N') {
                out.push('N');
            }
        }
        out
    }
}

/// Splits whole frames off the front of `buffer`.
pub fn parse_frames(buffer: &mut Vec<u8>) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        if buffer.len() < 9 {
            return frames;
        }
        let length = usize::from(buffer[0]) << 16 | usize::from(buffer[1]) << 8 | usize::from(buffer[2]);
        if buffer.len() < 9 + length {
            return frames;
        }
        let stream = u32::from_be_bytes([buffer[5], buffer[6], buffer[7], buffer[8]]) & 0x7fff_ffff;
        let payload = buffer[9..9 + length].to_vec();
        frames.push(Frame { kind: buffer[3], flags: buffer[4], stream, payload });
        buffer.drain(..9 + length);
    }
}

/// HTTP/2 error codes by name, for reports.
pub fn reason_name(code: u32) -> String {
    match code {
        0x0 => "NO_ERROR".into(),
        0x1 => "PROTOCOL_ERROR".into(),
        0x2 => "INTERNAL_ERROR".into(),
        0x3 => "FLOW_CONTROL_ERROR".into(),
        0x7 => "REFUSED_STREAM".into(),
        0x8 => "CANCEL".into(),
        0x9 => "COMPRESSION_ERROR".into(),
        0xb => "ENHANCE_YOUR_CALM".into(),
        other => format!("0x{other:x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_parser() {
        let mut bytes = encode_frame(frame::RST_STREAM, 0, 7, &8u32.to_be_bytes());
        bytes.extend(settings(&[(frame::MAX_CONCURRENT_STREAMS, 100)]));
        bytes.extend_from_slice(&[0, 0]); // the start of a frame not yet whole
        let frames = parse_frames(&mut bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].stream, frames[0].error_code()), (7, Some(8)));
        assert_eq!(frames[1].settings(), [(frame::MAX_CONCURRENT_STREAMS, 100)]);
        assert_eq!(bytes, [0, 0]);
    }

    #[test]
    fn hpack_integers_use_continuation_bytes_past_their_prefix() {
        let mut block = Vec::new();
        hpack_integer(&mut block, 7, 0, 10);
        assert_eq!(block, [10]);
        block.clear();
        // RFC 7541 C.1.2: 1337 with a 5-bit prefix.
        hpack_integer(&mut block, 5, 0, 1337);
        assert_eq!(block, [31, 154, 10]);
    }

    #[test]
    fn a_large_header_block_is_cut_into_headers_and_continuations() {
        let block = vec![0u8; 40_000];
        let mut bytes = headers_frames(1, &block, true, 16_384);
        let frames = parse_frames(&mut bytes);
        let kinds: Vec<(u8, u8)> = frames.iter().map(|f| (f.kind, f.flags)).collect();
        assert_eq!(
            kinds,
            [(frame::HEADERS, frame::END_STREAM), (frame::CONTINUATION, 0), (frame::CONTINUATION, frame::END_HEADERS)]
        );
    }
}
