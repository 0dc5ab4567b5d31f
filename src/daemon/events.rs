//! What the daemon tells its caller (tests, systemd) besides stdout and the log.

use std::net::SocketAddr;

/// What the daemon reports to its caller (tests) besides stdout and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every listener is up and its identity's session exists.
    Ready(Vec<ListenerReady>),
    /// A reload finished: the listeners it (re)started, or why nothing changed; and how
    /// many stopped listeners still have clients connected.
    Reloaded {
        result: Result<Vec<ListenerReady>, String>,
        draining: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerReady {
    pub name: String,
    pub listen: SocketAddr,
    /// The b32 of the listener's identity, or "per-username".
    pub identity: String,
}

/// The line scripts read: `destination <b32 or per-username> (<name> on <addr>)`.
impl std::fmt::Display for ListenerReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "destination {} ({} on {})",
            self.identity, self.name, self.listen
        )
    }
}
