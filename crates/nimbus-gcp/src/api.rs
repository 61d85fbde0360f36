//! Google REST APIs: errors.

use thiserror::Error;

/// A failed call to a Google API.
#[derive(Debug, Error)]
#[error("{method} {url}: {message}")]
pub struct ApiError {
    /// The HTTP method.
    pub method: String,
    /// The URL (without credentials).
    pub url: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Google's message (or the transport's).
    pub message: String,
}
