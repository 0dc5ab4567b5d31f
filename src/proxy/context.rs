//! What the connections of one listener share: its settings (timeouts, login, filters,
//! UDP limits), its state (stand-ins, counters, client slots) and the decisions that only
//! read them (whose stand-ins, which reply code).

use crate::config::FilterMode;
use crate::i2p::OpenError;
use crate::naming::standins::Network;
use crate::naming::StandIns;
use crate::proxy::logins::Logins;
use crate::proxy::stats::Stats;
use crate::socks::{AuthCheck, Credentials, Reply, Request, Version};
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Settings and state shared by the connections of a listener.
pub struct ListenerContext {
    pub handshake_timeout: Duration,
    pub stream_timeout: Duration,
    /// Stand-in addresses handed out by RESOLVE on this listener.
    pub stand_ins: Arc<StandIns>,
    /// One identity per SOCKS username: stand-ins are kept apart per username too.
    pub per_user: bool,
    /// RFC 1929 login required on this listener.
    pub auth: Option<AuthCheck>,
    /// Failed logins by source address (shared by the listeners of the process).
    pub logins: Arc<Logins>,
    /// This listener's counters.
    pub stats: Arc<Stats>,
    /// One permit per connected client: at most `max_clients` at a time.
    pub slots: Arc<Semaphore>,
    pub max_clients: usize,
    /// Connections of the whole process (all listeners), from its descriptor limit.
    pub budget: Arc<Semaphore>,
    /// Leak filters for this listener's streams, and the HTTP filter's User-Agent.
    pub filter: FilterMode,
    pub user_agent: Option<String>,
    /// The IRC filter replaces `USER` names that are local account names.
    pub irc_hide_account: bool,
    /// UDP ASSOCIATE settings; None: refused with 0x07.
    pub udp: Option<UdpLimits>,
    /// Tor's extended SOCKS5 error codes instead of RFC 1928's.
    pub extended_errors: bool,
    /// Streams that only finish a reply for a client that half-closed (a SAM stream cannot
    /// carry its FIN, and a client that closed for good looks the same): a drain does not
    /// wait for them, and a new client takes the oldest one's slot when none is free.
    pub finishing: Arc<crate::proxy::finishing::Finishing>,
    /// An `eepsocks exec`'s context: what it was refused, for its report.
    pub exec: Option<Arc<crate::proxy::tally::Tally>>,
}

impl ListenerContext {
    pub fn new(
        handshake_timeout: Duration,
        stream_timeout: Duration,
        max_clients: usize,
    ) -> ListenerContext {
        ListenerContext {
            handshake_timeout,
            stream_timeout,
            stand_ins: Arc::default(),
            per_user: false,
            auth: None,
            logins: Arc::default(),
            stats: Arc::default(),
            slots: Arc::new(Semaphore::new(max_clients)),
            max_clients,
            budget: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            filter: FilterMode::Auto,
            user_agent: None,
            irc_hide_account: true,
            udp: None,
            extended_errors: false,
            finishing: Arc::default(),
            exec: None,
        }
    }

    /// The login check for a client at `peer`: the listener's, behind the lockouts of
    /// addresses that failed before (see `logins`).
    pub(crate) fn login_check(&self, peer: SocketAddr) -> Option<AuthCheck> {
        let check = self.auth.clone()?;
        let logins = self.logins.clone();
        Some(Arc::new(move |c: &Credentials| {
            logins.attempt(peer.ip(), || check(c))
        }))
    }

    /// Whose stand-ins a request sees: its username's on per-username listeners, else the
    /// listener's (one identity for every client).
    pub(crate) fn who<'a>(&self, request: &'a Request) -> &'a [u8] {
        match (&request.credentials, self.per_user) {
            (Some(c), true) => &c.username,
            _ => b"",
        }
    }

    /// Whether `stand_ins` is automap's table (this is the automap listener; every other
    /// listener's is RESOLVE's 255/8): UDP replies then name their sender by a virtual
    /// address, as DNS answers do.
    pub fn is_automap(&self) -> bool {
        self.stand_ins.network() != Network::RESOLVE
    }

    pub(crate) fn open_error_reply(&self, request: &Request, e: &OpenError) -> Reply {
        self.pick(request, e.reply(), e.extended_reply())
    }

    /// `extended` where `request` gets Tor's extended codes (SOCKS5 on a listener that
    /// asks for them), else `plain`.
    pub(crate) fn pick(&self, request: &Request, plain: Reply, extended: Reply) -> Reply {
        if self.extended_errors && request.version == Version::V5 {
            extended
        } else {
            plain
        }
    }

    /// Clients connected now (handshaking, or with a stream open), but for streams that
    /// only finish a reply for a half-closed client: what a drain waits for.
    pub fn open(&self) -> usize {
        let connected = self.max_clients - self.slots.available_permits();
        connected.saturating_sub(self.finishing.count())
    }
}

/// A listener's UDP settings (`[udp]`).
#[derive(Clone, Debug)]
pub struct UdpLimits {
    pub max_payload: usize,
    pub idle: Duration,
    pub rate: u32,
    /// Associations open (or being set up) on the listener: a count, not a semaphore, so
    /// that a reload's new `max_associations` applies to the ones already open.
    pub open: Arc<AtomicUsize>,
    pub max_associations: usize,
}
