//! The closed set of error kinds a request can end in. Only this module knows
//! how a kind maps to an HTTP status and a gRPC code, so a failure keeps its
//! meaning across hops.

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// What went wrong, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request is malformed or invalid (400).
    BadRequest,
    /// No tenant id was given while auth is enabled (401).
    Unauthorized,
    /// The tenant may not use this feature (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// A rate or size limit refused the request (429).
    RateLimited,
    /// The request body is too large (413).
    PayloadTooLarge,
    /// The client went away (499).
    Cancelled,
    /// A dependency is not available right now (503).
    Unavailable,
    /// The request took too long (504).
    Timeout,
    /// A fault in Sluice (500).
    Internal,
}

impl ErrorCode {
    /// Returns the HTTP status Loki uses for this kind of failure.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status code"),
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the gRPC code that carries this kind across a hop.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            ErrorCode::BadRequest => tonic::Code::InvalidArgument,
            ErrorCode::Unauthorized => tonic::Code::Unauthenticated,
            ErrorCode::Forbidden => tonic::Code::PermissionDenied,
            ErrorCode::NotFound => tonic::Code::NotFound,
            ErrorCode::RateLimited => tonic::Code::ResourceExhausted,
            ErrorCode::PayloadTooLarge => tonic::Code::OutOfRange,
            ErrorCode::Cancelled => tonic::Code::Cancelled,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Timeout => tonic::Code::DeadlineExceeded,
            ErrorCode::Internal => tonic::Code::Internal,
        }
    }

    /// Returns the kind a gRPC code stands for (the inverse of
    /// [`ErrorCode::grpc_code`]; codes Sluice never sends are internal).
    pub fn from_grpc_code(code: tonic::Code) -> ErrorCode {
        match code {
            tonic::Code::InvalidArgument => ErrorCode::BadRequest,
            tonic::Code::Unauthenticated => ErrorCode::Unauthorized,
            tonic::Code::PermissionDenied => ErrorCode::Forbidden,
            tonic::Code::NotFound => ErrorCode::NotFound,
            tonic::Code::ResourceExhausted => ErrorCode::RateLimited,
            tonic::Code::OutOfRange => ErrorCode::PayloadTooLarge,
            tonic::Code::Cancelled => ErrorCode::Cancelled,
            tonic::Code::Unavailable => ErrorCode::Unavailable,
            tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
            _ => ErrorCode::Internal,
        }
    }
}

/// An error that knows its [`ErrorCode`].
pub trait ServiceError: std::error::Error + Send + Sync + 'static {
    /// Returns the kind of failure.
    fn code(&self) -> ErrorCode;
}

/// A finished HTTP error: status plus Loki's plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// The message, sent verbatim as the body.
    pub message: String,
}

impl HttpError {
    /// Builds an error of the given kind.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> HttpError {
        HttpError {
            code,
            message: message.into(),
        }
    }

    /// Builds a 400.
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(ErrorCode::BadRequest, message)
    }
}

impl<E: ServiceError> From<E> for HttpError {
    fn from(err: E) -> HttpError {
        HttpError::new(err.code(), err.to_string())
    }
}

impl HttpError {
    /// Carries this error across a gRPC hop.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.code.grpc_code(), self.message.clone())
    }

    /// Recovers an error sent by [`HttpError::to_status`]; transport failures
    /// (the peer is down) become 503s.
    pub fn from_status(status: &tonic::Status) -> HttpError {
        HttpError::new(
            ErrorCode::from_grpc_code(status.code()),
            status.message().to_string(),
        )
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        // Go's http.Error always appends a newline, even to a message that
        // ends with one (LogQL pipeline errors do); clients see Loki's bytes.
        let mut body = self.message;
        body.push('\n');
        (
            self.code.http_status(),
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_grpc() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Cancelled,
            ErrorCode::Unavailable,
            ErrorCode::Timeout,
            ErrorCode::Internal,
        ] {
            assert_eq!(ErrorCode::from_grpc_code(code.grpc_code()), code);
        }
    }

    #[test]
    fn statuses_match_loki() {
        assert_eq!(ErrorCode::BadRequest.http_status().as_u16(), 400);
        assert_eq!(ErrorCode::Unauthorized.http_status().as_u16(), 401);
        assert_eq!(ErrorCode::Forbidden.http_status().as_u16(), 403);
        assert_eq!(ErrorCode::RateLimited.http_status().as_u16(), 429);
        assert_eq!(ErrorCode::Cancelled.http_status().as_u16(), 499);
        assert_eq!(ErrorCode::Timeout.http_status().as_u16(), 504);
    }
}
