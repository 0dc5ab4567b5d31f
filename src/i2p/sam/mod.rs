//! SAM v3 client: `wire` (the line protocol), `error`, `session` (a session kept alive by
//! a task that owns its control connection; one connection per stream), `datagram`
//! (repliable datagrams), `caps` (what a bridge offers), and the sessionless `commands`.

pub mod caps;
mod commands;
pub mod datagram;
mod error;
mod session;
mod wire;

pub use datagram::{DatagramConfig, DatagramSession};
pub use session::{
    Created, Keys, Session, SessionConfig, SessionState, SharedDatagrams, CREATE_TIMEOUT,
};
pub use wire::{quote, set_login, ReplyLine, SamLogin, SamSocket, MAX_COMMAND};

pub use commands::{forward, generate_keys, generate_keys_on};
pub use error::SamError;
