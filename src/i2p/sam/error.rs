//! What can go wrong talking to a SAM bridge.

#[derive(Debug, thiserror::Error)]
pub enum SamError {
    #[error("cannot reach the SAM bridge: {0}")]
    Io(#[from] std::io::Error),
    #[error("SAM protocol error: {0}")]
    Protocol(String),
    /// The router answered with a RESULT other than OK.
    #[error("router said {result}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        result: String,
        message: Option<String>,
    },
    #[error("the SAM session is not available")]
    NoSession,
    /// The session is down (router unreachable or lost); being recreated.
    #[error("the router is unavailable: {0}")]
    Down(String),
    /// The router is still creating the session (building tunnels): it works, but cannot
    /// carry streams yet.
    #[error("the router is not ready: {0}")]
    NotReady(String),
    /// The router did not answer a command within our deadline for it.
    #[error("no answer from the router: {0}")]
    Deadline(String),
    /// The bridge wants a login we do not have, or refused ours.
    #[error("{0}")]
    Login(String),
    /// The router closed a stream it was asked to open while the session stayed up: the
    /// destination could not be reached (emissary does this when no LeaseSet is found).
    #[error("{0}")]
    Unreachable(String),
}

impl SamError {
    pub fn result(&self) -> Option<&str> {
        match self {
            SamError::Refused { result, .. } => Some(result),
            _ => None,
        }
    }
}
