//! The errors a use case can end with. Entry points map them to their own
//! protocol (HTTP status codes in the API); the messages here are safe to show.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is well-formed but breaks a rule (HTTP 422).
    #[error("{message}")]
    Validation { field: Option<String>, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request collides with stored state (HTTP 409), e.g. an identity
    /// already owned by another contact.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<String>,
        message: String,
    },
    /// Too many requests; try again after this many seconds (HTTP 429).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("these credentials do not give access to this resource")]
    Forbidden,
    /// Anything that went wrong below us. The text is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Validation {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    pub fn taken(field: &str) -> Self {
        Error::Conflict {
            code: "identity_taken",
            field: Some(field.to_string()),
            message: format!("{field} already belongs to another contact in this project"),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}
