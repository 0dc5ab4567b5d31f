//! The `Router` for any router with a SAM v3 bridge (i2pd, Java I2P, emissary, the
//! embedded one): names through the address books, then the router; streams through the
//! identity that serves the client.

use super::identity::{LeaseError, Pool};
use super::router::{OpenError, Opened, Router};
use super::sam::{DatagramConfig, DatagramSession, SamError, Session};
use crate::naming::{garlicat, Books, Target};
use crate::socks::Credentials;
use std::sync::Arc;

/// Any router with a SAM v3 bridge (i2pd, Java I2P, emissary), with the listener's
/// identities and the user's address book.
pub struct SamRouter {
    pub pool: Arc<Pool>,
    pub book: Arc<Books>,
    /// The router's SAM UDP port and datagram size limit; None: no UDP ASSOCIATE.
    pub udp: Option<UdpRouter>,
    /// The connect timeout the router gets for each stream (see `Session::connect`).
    pub router_timeout: Option<std::time::Duration>,
}

/// Where and how big datagrams go to the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpRouter {
    pub sam_udp: std::net::SocketAddr,
    /// Line plus payload per UDP datagram to the router (emissary truncates past 8 KiB).
    pub max_send: usize,
}

impl SamRouter {
    /// A name's destination: the user's book, then the router's (through the session of
    /// the identity that will use it, so lookups are isolated like streams), then the
    /// subscriptions. A book entry may be a b32 (STREAM CONNECT takes it as it is).
    async fn lookup(&self, session: &Session, name: &str) -> Result<String, OpenError> {
        if let Some(d) = self.book.user(name) {
            return Ok(d.sam_dest());
        }
        match session.lookup(name).await.map_err(|e| map_sam(e, true)) {
            Ok(d) => Ok(d.to_base64()),
            Err(OpenError::NameNotFound) => match self.book.subscribed(name) {
                Some(d) => Ok(d.sam_dest()),
                None => Err(OpenError::NameNotFound),
            },
            Err(e) => Err(e),
        }
    }
}

impl Router for SamRouter {
    async fn datagrams(&self, who: Option<&Credentials>) -> Result<DatagramSession, OpenError> {
        let udp = self
            .udp
            .as_ref()
            .ok_or_else(|| OpenError::Router("no SAM UDP port known".into()))?;
        let t = self.pool.template();
        let tag = match (who, self.pool.is_per_user()) {
            (Some(_), true) => "u",
            _ => "l",
        };
        let name: String = format!("eepsocks-udp-{}-{tag}", self.pool.listener())
            .chars()
            .take(40)
            .collect();
        let cfg = DatagramConfig {
            sam_addr: t.sam_addr.clone(),
            sam_udp: udp.sam_udp,
            name,
            options: t.options.clone(),
            sig_type: t.sig_type,
            max_send: udp.max_send,
        };
        // The identity's own datagram subsession where the router has PRIMARY and no other
        // association holds it; else a session (and destination) for this association.
        if t.datagrams {
            let lease = self.pool.lease(who).await.map_err(map_lease)?;
            if let Some(dg) = DatagramSession::on_identity(&lease.session, &cfg)
                .await
                .map_err(|e| map_sam(e, false))?
            {
                return Ok(dg);
            }
        }
        DatagramSession::create(&cfg)
            .await
            .map_err(|e| map_sam(e, false))
    }

    async fn datagram_dest(
        &self,
        dg: &DatagramSession,
        target: &Target,
    ) -> Result<Arc<str>, OpenError> {
        let Target::Name(name) = target else {
            return dg
                .lookup(target.as_str())
                .await
                .map_err(|e| map_sam(e, true));
        };
        if let Some(d) = dg.cached(name) {
            return Ok(d);
        }
        let found = self.lookup(dg.session(), name).await?;
        // A send line takes only a full destination (a b32 there is dropped silently), so
        // a book's b32 entry is looked up in turn.
        let d = if found.ends_with(".b32.i2p") {
            dg.lookup(&found).await.map_err(|e| map_sam(e, true))?
        } else {
            found.into()
        };
        dg.remember(name, d.clone());
        Ok(d)
    }

    async fn resolve(&self, who: Option<&Credentials>, target: &Target) -> Result<(), OpenError> {
        if let Target::Name(name) = target {
            let lease = self.pool.lease(who).await.map_err(map_lease)?;
            let found = self.lookup(&lease.session, name).await?;
            self.met(who, &found);
        }
        Ok(())
    }

    async fn garlicat(
        &self,
        who: Option<&Credentials>,
        target: &Target,
    ) -> Result<Option<std::net::Ipv6Addr>, OpenError> {
        let b32 = match target {
            Target::B32(b) => b.clone(),
            Target::B33(_) => return Ok(None),
            Target::Name(name) => {
                let lease = self.pool.lease(who).await.map_err(map_lease)?;
                match b32_of(&self.lookup(&lease.session, name).await?) {
                    Some(b) => b,
                    None => return Ok(None),
                }
            }
        };
        self.pool.garlicat.add(self.pool.garlicat_key(who), &b32);
        Ok(garlicat::address_of_b32(&b32))
    }

    fn garlicat_target(&self, who: Option<&Credentials>, bits: &garlicat::Bits) -> garlicat::Found {
        // The user's book too: its entries are destinations every identity may name. (The
        // subscriptions are not scanned: thousands of entries, each hashed per lookup.)
        let book: Vec<String> = self
            .book
            .user
            .read()
            .map(|b| b.iter().map(|(_, e)| e.b32()).collect())
            .unwrap_or_default();
        self.pool.garlicat.find(
            self.pool.garlicat_key(who),
            bits,
            book.iter().map(String::as_str),
        )
    }

    async fn open(
        &self,
        who: Option<&Credentials>,
        target: &Target,
        port: u16,
    ) -> Result<Opened, OpenError> {
        let lease = self.pool.lease(who).await.map_err(map_lease)?;
        let dest = match target {
            // The router resolves hashes itself (a LeaseSet lookup): hand it the name.
            Target::B32(name) | Target::B33(name) => name.clone(),
            Target::Name(name) => self.lookup(&lease.session, name).await?,
        };
        self.met(who, &dest);
        let (stream, early) = lease
            .session
            .connect(&dest, port, self.router_timeout)
            .await
            .map_err(|e| map_sam(e, false))?;
        Ok(Opened {
            stream,
            early,
            hold: Some(lease),
            // i2pd (SAMSocket::HandleReceived: Terminate on EOF) and emissary (the SAM
            // stream task closes both ways at read Ok(0)) drop the reply if we send a FIN.
            half_close: false,
        })
    }
}

/// The b32 address of what `lookup` returns (a base64 destination or a b32 address).
fn b32_of(found: &str) -> Option<String> {
    if found.ends_with(".b32.i2p") {
        return Some(found.to_ascii_lowercase());
    }
    crate::destination::Destination::from_base64(found)
        .ok()
        .map(|d| d.b32())
}

impl SamRouter {
    /// Remember a destination the identity serving `who` resolved or reached (GarliCat).
    fn met(&self, who: Option<&Credentials>, found: &str) {
        if let Some(b) = b32_of(found) {
            self.pool.garlicat.add(self.pool.garlicat_key(who), &b);
        }
    }
}

/// Why a pool had no session, as an open error.
fn map_lease(e: LeaseError) -> OpenError {
    match e {
        LeaseError::Limit(m) => OpenError::Limit(m),
        LeaseError::KeyFile(_) => OpenError::Router(e.to_string()),
        LeaseError::Sam(e) => map_sam(e, false),
    }
}

/// SAM results to open errors. `lookup` marks NAMING LOOKUP replies.
fn map_sam(e: SamError, lookup: bool) -> OpenError {
    match e {
        SamError::NotReady(m) => return OpenError::NotReady(m),
        SamError::Unreachable(m) => return OpenError::Unreachable(m),
        _ => {}
    }
    match e.result() {
        Some("KEY_NOT_FOUND") if lookup => OpenError::NameNotFound,
        Some("INVALID_KEY") if lookup => OpenError::NameNotFound,
        Some("CANT_REACH_PEER" | "PEER_NOT_FOUND" | "INVALID_KEY" | "KEY_NOT_FOUND") => {
            OpenError::Unreachable(e.to_string())
        }
        Some("TIMEOUT") => OpenError::Timeout(e.to_string()),
        _ => OpenError::Router(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socks::Reply;

    fn refused(r: &str) -> SamError {
        SamError::Refused {
            result: r.into(),
            message: None,
        }
    }

    #[test]
    fn sam_results_map_to_replies() {
        let cases = [
            (refused("KEY_NOT_FOUND"), true, Reply::HostUnreachable),
            (refused("INVALID_KEY"), true, Reply::HostUnreachable),
            (refused("CANT_REACH_PEER"), false, Reply::HostUnreachable),
            (refused("PEER_NOT_FOUND"), false, Reply::HostUnreachable),
            (refused("INVALID_KEY"), false, Reply::HostUnreachable),
            (refused("TIMEOUT"), false, Reply::TtlExpired),
            (refused("INVALID_ID"), false, Reply::GeneralFailure),
            (refused("I2P_ERROR"), false, Reply::GeneralFailure),
            (SamError::NoSession, false, Reply::GeneralFailure),
            (SamError::NotReady("x".into()), false, Reply::GeneralFailure),
            (SamError::Deadline("x".into()), false, Reply::GeneralFailure),
            (
                SamError::Unreachable("x".into()),
                false,
                Reply::HostUnreachable,
            ),
            (
                SamError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                false,
                Reply::GeneralFailure,
            ),
        ];
        for (e, lookup, want) in cases {
            let d = format!("{e}");
            assert_eq!(map_sam(e, lookup).reply(), want, "{d}");
        }
    }
}
