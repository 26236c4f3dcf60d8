//! The page's files: read once at start (a page is a few files), served
//! from memory with the build's gzip copies, cache rules by kind of file and
//! the page's security headers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tonic::body::Body;

use super::{WebError, body_of, plain};

/// The page's files, by path (`/`, `/assets/index-1a2b.js`).
#[derive(Debug)]
pub(super) struct Site {
    files: HashMap<String, Asset>,
}

#[derive(Debug)]
struct Asset {
    content_type: &'static str,
    /// Hashed asset names never change content; `index.html` always may.
    immutable: bool,
    bytes: Bytes,
    /// The build's `.gz` copy, when it made one.
    gzip: Option<Bytes>,
}

/// A page is a few files; a directory far larger is the wrong directory.
const MAX_SITE_FILES: usize = 512;
const MAX_SITE_BYTES: u64 = 32 * 1024 * 1024;

impl Site {
    pub(super) fn load(root: &Path) -> Result<Self, WebError> {
        let io = |source| WebError::Page { root: root.to_owned(), source };
        let mut files = HashMap::new();
        let mut pending = vec![root.to_owned()];
        let mut total = 0u64;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io)? {
                let entry = entry.map_err(io)?;
                let (kind, path) = (entry.file_type().map_err(io)?, entry.path());
                if kind.is_dir() {
                    pending.push(path);
                    continue;
                }
                // A linked directory is not followed: a link to a parent would never end.
                if kind.is_symlink() && path.is_dir() {
                    continue;
                }
                total += path.metadata().map_err(io)?.len();
                if files.len() >= MAX_SITE_FILES || total > MAX_SITE_BYTES {
                    return Err(io(std::io::Error::other("more files than a page has: is this the built page?")));
                }
                if path.extension().is_some_and(|e| e == "gz") {
                    continue;
                }
                let relative = path.strip_prefix(root).map_err(|e| io(std::io::Error::other(e)))?;
                let key = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
                let gz = PathBuf::from(format!("{}.gz", path.display()));
                let asset = Asset {
                    content_type: content_type(&key),
                    immutable: key.starts_with("/assets/"),
                    bytes: std::fs::read(&path).map_err(io)?.into(),
                    gzip: if gz.exists() { Some(std::fs::read(&gz).map_err(io)?.into()) } else { None },
                };
                files.insert(key, asset);
            }
        }
        if !files.contains_key("/index.html") {
            return Err(WebError::NoIndex(root.to_owned()));
        }
        Ok(Self { files })
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

impl Site {
    /// The file `request` names, as the browser takes it (gzip or not); `csp` on HTML.
    pub(super) fn respond(&self, request: &Request<Body>, csp: &HeaderValue) -> Response<Body> {
        let path = match request.uri().path() {
            "/" => "/index.html",
            path => path,
        };
        let Some(asset) = self.files.get(path) else {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        };
        let gzip = asset.gzip.as_ref().filter(|_| accepts_gzip(request));
        let head = request.method() == Method::HEAD;
        let mut response = body_of(gzip.unwrap_or(&asset.bytes).clone(), head);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if gzip.is_some() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if asset.content_type.starts_with("text/html") {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
        response
    }
}

fn accepts_gzip(request: &Request<Body>) -> bool {
    request.headers().get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            parts.next() == Some("gzip") && !parts.any(|p| p.replace(' ', "") == "q=0")
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn gzip_is_taken_unless_refused() {
        let request = |value: &str| Request::builder().header("accept-encoding", value).body(Body::empty()).unwrap();
        assert!(accepts_gzip(&request("gzip, deflate, br")));
        assert!(!accepts_gzip(&request("gzip;q=0, br")));
        assert!(!accepts_gzip(&request("br")));
    }
}
