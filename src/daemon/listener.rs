//! One listener: what it is made of (`Spec`, from the config), what a restart keeps from
//! the listener it replaces (`Carried`), and the one place its `ListenerContext` is built.

use super::identities::IdentityKey;
use super::status::ListenerInfo;
use crate::config::{Config, Listener, UdpConfig};
use crate::i2p::identity::{Mode, Pool, Template};
use crate::i2p::sam_router::UdpRouter;
use crate::i2p::SamRouter;
use crate::naming::standins::{Network, StandIns, DEFAULT_QUARANTINE};
use crate::proxy::context::{ListenerContext, UdpLimits};
use crate::proxy::logins::Logins;
use crate::proxy::stats::Stats;
use crate::socks::AuthCheck;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// One running listener.
pub(super) struct Running {
    /// Its config and the global values its behaviour depends on; restarted when these change.
    pub(super) spec: Spec,
    pub(super) socket: Arc<TcpListener>,
    pub(super) stop: CancellationToken,
    pub(super) ctx: Arc<ListenerContext>,
    pub(super) pool: Arc<Pool>,
    pub(super) info: Arc<ListenerInfo>,
    pub(super) router: Arc<SamRouter>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spec {
    pub(super) listener: Listener,
    pub(super) template: Template,
    pub(super) handshake_timeout: u64,
    pub(super) stream_timeout: u64,
    pub(super) max_clients: usize,
    pub(super) per_user_dir: Option<PathBuf>,
    pub(super) identity: Option<IdentityKey>,
    /// `[udp]` when this listener accepts UDP ASSOCIATE.
    pub(super) udp: Option<UdpConfig>,
    /// Where datagrams go; None when unknown (UDP ASSOCIATE then fails with 0x01).
    pub(super) sam_udp: Option<UdpRouter>,
    /// The automap listener's virtual network; its table is kept while it stays the same
    /// (a new quarantine applies to the kept table: `start_automap`).
    pub(super) automap: Option<Network>,
}

/// Where a listener's identity comes from: its key (shared by the listeners naming it),
/// or one identity per username (`per_user_dir`: where their keys are kept, if anywhere).
pub(super) struct IdentityChoice {
    pub(super) key: Option<IdentityKey>,
    pub(super) per_user_dir: Option<PathBuf>,
}

impl Spec {
    /// Listener `l` of `cfg`, with its identity chosen.
    pub(super) fn from_config(cfg: &Config, l: &Listener, id: IdentityChoice) -> Result<Spec> {
        let automap_listener = cfg.automap_listener();
        Ok(Spec {
            listener: l.clone(),
            template: listener_template(cfg, l)?,
            handshake_timeout: cfg.handshake_timeout,
            stream_timeout: cfg.stream_timeout,
            max_clients: cfg.max_clients,
            per_user_dir: id.per_user_dir,
            identity: id.key,
            udp: cfg.udp_on(l).then(|| cfg.udp.clone()),
            sam_udp: cfg.sam_udp_addr().map(|sam_udp| UdpRouter {
                sam_udp,
                max_send: cfg.sam_udp_max.unwrap_or(65_507),
            }),
            automap: match &cfg.automap {
                Some(a) if automap_listener.as_deref() == Some(l.name.as_str()) => Some(a.network),
                _ => None,
            },
        })
    }
}

/// What listener `l`'s sessions are created with.
pub(super) fn listener_template(cfg: &Config, l: &Listener) -> Result<Template> {
    Ok(Template {
        sam_addr: cfg.sam.clone(),
        options: cfg.listener_options(&l.options)?,
        sig_type: cfg.signature_type,
        create_timeout: Duration::from_secs(cfg.session_timeout),
        // with a SAM UDP port to send through, as `sam_udp` below
        datagrams: cfg.udp_on(l) && cfg.sam_udp_addr().is_some(),
    })
}

/// What a listener restarted by a reload (same name, new spec) keeps from the one it
/// replaces; a new listener starts these afresh.
pub(super) struct Carried {
    /// Its counters: the status endpoint's totals do not restart.
    pub(super) stats: Arc<Stats>,
    /// The stand-in addresses it handed out, while its network stays the same (clients
    /// still hold them).
    pub(super) stand_ins: Arc<StandIns>,
    /// Its open UDP associations, counted against the new `max_associations`.
    pub(super) udp_open: Arc<AtomicUsize>,
}

impl Carried {
    /// From `prev` (the replaced listener's spec and context), for a listener of `spec`.
    pub(super) fn from_previous(prev: Option<(&Spec, &ListenerContext)>, spec: &Spec) -> Carried {
        let stand_ins = match (prev, spec.automap) {
            (Some((old, ctx)), a) if old.automap == a => ctx.stand_ins.clone(),
            // The quarantine is set by `start_automap`, right after, in the same commit.
            (_, Some(net)) => Arc::new(StandIns::new(net, DEFAULT_QUARANTINE)),
            (_, None) => Arc::default(),
        };
        Carried {
            stats: prev.map(|(_, c)| c.stats.clone()).unwrap_or_default(),
            stand_ins,
            udp_open: prev
                .and_then(|(_, c)| c.udp.as_ref())
                .map(|u| u.open.clone())
                .unwrap_or_default(),
        }
    }
}

/// What every listener of the process shares.
pub(super) struct Shared {
    /// Client connections of all listeners together, from the descriptor limit.
    pub(super) budget: Arc<Semaphore>,
    /// Failed logins by source address.
    pub(super) logins: Arc<Logins>,
}

/// The one place a listener's context is built: from its spec, its login check, what it
/// carries over from the listener it replaces, and what the process shares.
pub(super) fn listener_context(
    spec: &Spec,
    auth: Option<AuthCheck>,
    carried: Carried,
    shared: &Shared,
) -> ListenerContext {
    let l = &spec.listener;
    let mut ctx = ListenerContext::new(
        Duration::from_secs(spec.handshake_timeout),
        Duration::from_secs(spec.stream_timeout),
        spec.max_clients,
    );
    ctx.budget = shared.budget.clone();
    ctx.logins = shared.logins.clone();
    ctx.stand_ins = carried.stand_ins;
    ctx.stats = carried.stats;
    ctx.extended_errors = l.extended_errors;
    ctx.per_user = spec.identity.is_none();
    ctx.filter = l.filter;
    ctx.udp = spec.udp.as_ref().map(|u| UdpLimits {
        max_payload: u.max_payload,
        idle: Duration::from_secs(u.idle_timeout),
        rate: u.rate,
        open: carried.udp_open,
        max_associations: u.max_associations,
    });
    ctx.user_agent = l.user_agent.clone();
    ctx.irc_hide_account = l.irc_hide_account;
    ctx.auth = auth;
    ctx
}

/// What the status endpoint shows of a listener; `bound`: its address as bound (a port 0
/// in the config is the kernel's choice); `identity`: its b32 as known at start (the
/// session's keys, once made, win).
pub(super) fn listener_info(
    spec: &Spec,
    bound: std::net::SocketAddr,
    ctx: &ListenerContext,
    pool: &Arc<Pool>,
    session: Option<crate::i2p::sam::Session>,
    identity: String,
) -> ListenerInfo {
    let (p1, p2) = (pool.clone(), pool.clone());
    ListenerInfo {
        name: spec.listener.name.clone(),
        listen: bound.to_string(),
        identity: match session {
            Some(s) => Box::new(move || {
                s.keys()
                    .map(|k| k.destination().b32())
                    .unwrap_or(identity.clone())
            }),
            None => Box::new(|| "per-username".to_string()),
        },
        stats: ctx.stats.clone(),
        session: Box::new(move || p1.session_view()),
        per_user_identities: Box::new(move || p2.users()),
    }
}

/// The per-user pool of a listener: the one it had, when keys and options are unchanged
/// (users keep their sessions across the reload); else a new one, which for persistent
/// keys takes over from the old one (whose sessions must close first).
pub(super) fn per_user_pool(spec: &Spec, prev: Option<&Running>) -> Arc<Pool> {
    let prev = prev.filter(|r| r.pool.is_per_user());
    let unchanged = prev.filter(|r| {
        r.spec.per_user_dir == spec.per_user_dir
            && r.spec.template == spec.template
            && r.spec.listener.idle_timeout == spec.listener.idle_timeout
            && r.spec.listener.max_identities == spec.listener.max_identities
    });
    if let Some(r) = unchanged {
        return r.pool.clone();
    }
    let mode = Mode::PerUser {
        key_dir: spec.per_user_dir.clone(),
        idle: Duration::from_secs(spec.listener.idle_timeout),
        max: spec.listener.max_identities,
    };
    let pool = Pool::new(&spec.listener.name, spec.template.clone(), mode);
    match prev {
        Some(r) if r.spec.per_user_dir.is_some() => {
            r.pool.close_all();
            Arc::new(pool.replacing(r.pool.clone()))
        }
        _ => Arc::new(pool),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// The spec of the default listener, with UDP on or off and automap on a network or not.
    fn spec(udp: bool, automap: Option<&str>) -> Spec {
        let mut cfg = Config::default();
        cfg.udp.enabled = udp;
        cfg.automap = automap.map(|net| crate::config::AutomapConfig {
            network: net.parse().unwrap(),
            dns_listen: None,
            trans_listen: None,
            listener: None,
            ttl: 60,
            quarantine: 60,
        });
        let l = cfg.listeners()[0].clone();
        let id = IdentityChoice {
            key: Some(IdentityKey::Transient(l.name.clone())),
            per_user_dir: None,
        };
        Spec::from_config(&cfg, &l, id).unwrap()
    }

    fn context(spec: &Spec, carried: Carried) -> ListenerContext {
        let shared = Shared {
            budget: Arc::new(Semaphore::new(10)),
            logins: Arc::default(),
        };
        listener_context(spec, None, carried, &shared)
    }

    #[test]
    fn a_restart_keeps_counters_open_associations_and_stand_ins_of_the_same_network() {
        let old_spec = spec(true, Some("127.192.0.0/10"));
        let old = context(&old_spec, Carried::from_previous(None, &old_spec));
        old.stats.connections.fetch_add(5, Ordering::Relaxed);
        let udp = old.udp.as_ref().expect("[udp] on");
        udp.open.fetch_add(2, Ordering::Relaxed);
        let handed_out = old.stand_ins.map(b"", "a.i2p").unwrap();

        // Restarted on the same network: what clients hold and what was counted lives on.
        let new_spec = spec(true, Some("127.192.0.0/10"));
        let new = context(
            &new_spec,
            Carried::from_previous(Some((&old_spec, &old)), &new_spec),
        );
        assert!(Arc::ptr_eq(&new.stats, &old.stats), "counters kept");
        assert_eq!(new.stats.connections.load(Ordering::Relaxed), 5);
        let new_udp = new.udp.as_ref().unwrap();
        assert!(
            Arc::ptr_eq(&new_udp.open, &udp.open),
            "open associations kept"
        );
        assert_eq!(
            new.stand_ins.map(b"", "a.i2p"),
            Some(handed_out),
            "stand-ins kept"
        );

        // Another network: the old addresses mean nothing there; counters still kept.
        let moved = spec(true, Some("10.200.0.0/16"));
        let new = context(
            &moved,
            Carried::from_previous(Some((&old_spec, &old)), &moved),
        );
        assert!(!Arc::ptr_eq(&new.stand_ins, &old.stand_ins), "a new table");
        assert_eq!(new.stand_ins.network(), "10.200.0.0/16".parse().unwrap());
        assert!(Arc::ptr_eq(&new.stats, &old.stats));

        // Automap off: RESOLVE's own table, not automap's.
        let plain = spec(false, None);
        let new = context(
            &plain,
            Carried::from_previous(Some((&old_spec, &old)), &plain),
        );
        assert_eq!(new.stand_ins.network(), Network::RESOLVE);
        assert!(new.udp.is_none(), "[udp] off: ASSOCIATE refused");
    }

    #[test]
    fn a_new_listener_starts_afresh() {
        let s = spec(true, None);
        let ctx = context(&s, Carried::from_previous(None, &s));
        assert_eq!(ctx.stats.connections.load(Ordering::Relaxed), 0);
        assert_eq!(ctx.udp.as_ref().unwrap().open.load(Ordering::Relaxed), 0);
        assert_eq!(ctx.stand_ins.network(), Network::RESOLVE);
        assert_eq!(ctx.max_clients, Config::default().max_clients);
        assert!(!ctx.per_user, "a key of its own");
    }
}
