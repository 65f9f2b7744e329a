//! The browser page of `remotemedia serve --ui` (`GET /`): one HTML file with plain JS, embedded
//! in the binary so that users need no build step and the server no files beside it. The page
//! captures the microphone, streams it over the protocol of docs/protocol.md and draws the level,
//! the VAD decisions and the segments (docs/serving.md).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page itself (src/serve/ui.html).
pub const PAGE: &str = include_str!("ui.html");

/// `GET /`: the page. It holds no secret, so it needs no token; the requests it makes carry the
/// token given in its own URL (`?token=...`).
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], PAGE).into_response()
}
