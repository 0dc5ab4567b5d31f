//! What a SAM bridge can do beyond SAM 3.1, learnt once per bridge address: ML-KEM hybrid
//! LeaseSet encryption (types 5–7) and `STYLE=DATAGRAM2`.
//!
//! No bridge says its router's version, and guessing wrong is not harmless: i2pd 2.45.1
//! (Debian 12) crashes (segfault in its tunnel thread) on a session with
//! `i2cp.leaseSetEncType=6,4` instead of refusing it. So type 6 is sent only to a bridge
//! known to have it:
//! - a bridge that negotiates SAM 3.1 at most (i2pd before its 3.3 handshake, e.g. 2.45)
//!   gets neither;
//! - one that answers 3.2 to our `MAX=3.3` is emissary's: ML-KEM yes (0.4.0 has it; its
//!   parser drops types it does not know instead of failing), DATAGRAM2 no: emissary 0.4.0
//!   takes `STYLE=DATAGRAM2` but cannot receive one. `DatagramManager::on_datagram`
//!   (`sam/protocol/datagram/mod.rs:219-220`) takes the signed data as
//!   `payload[D .. L - D - S]` (D: its own destination's length, 391 for Ed25519; S: the
//!   signature's, 64; L: the whole datagram, the sender's destination + 2 flag bytes + our
//!   n bytes + S) where the spec's range is `payload[D .. L - S]`. So n < D - 2 (389) bytes
//!   panics ("slice index starts at 391 but ends at 35" for n = 33), and any longer one
//!   fails its signature check and is dropped ("failed to handle datagram"). That is the
//!   receiving router's code whatever the sender, its signature type, offline-signature
//!   flag, SAM version or PRIMARY subsession: no client-side setting avoids it;
//! - one that answers 3.3 (i2pd, Java I2P) is asked once: `SESSION CREATE STYLE=DATAGRAM2`
//!   without a DESTINATION. i2pd ≥ 2.58 (the release with ML-KEM and DATAGRAM2) checks the
//!   style first and answers INVALID_KEY; older ones answer `I2P_ERROR "Unknown STYLE"`.
//!
//! A bridge that still refuses (SESSION STATUS I2P_ERROR naming the encryption or the
//! style) is downgraded here, so later sessions do not ask again.

use super::wire::{ReplyLine, SamSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The LeaseSet encryption types a session gets when the config does not set
/// `i2cp.leaseSetEncType`: ML-KEM-768 hybrid first, X25519 for peers without ML-KEM.
/// Never `6` alone: i2pd 2.59 SAM streams with `6` alone moved no bytes (#2358).
pub const ENC_PQ: &str = "6,4";
/// The same for a router without ML-KEM. ElGamal (0) is left out: no router of the last
/// years needs it, and emissary drops it anyway.
pub const ENC_CLASSIC: &str = "4";
/// The session option our default fills in.
pub const ENC_KEY: &str = "i2cp.leaseSetEncType";

/// What a bridge takes, as far as we know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub ml_kem: bool,
    pub datagram2: bool,
    /// SAM 3.3 `STYLE=PRIMARY` with `SESSION ADD` of stream and datagram subsessions:
    /// emissary 0.4.0 (it answers 3.2 but has them), and the 3.3 bridges with DATAGRAM2
    /// (i2pd 2.58+, whose MASTER sessions took datagram subsessions then; Java I2P 2.11).
    pub primary: bool,
}

/// How long the one-time probe may take (a bridge answers it without building tunnels).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

static KNOWN: Mutex<Vec<(String, Caps)>> = Mutex::new(Vec::new());
static PROBES: AtomicU64 = AtomicU64::new(1);

fn lock() -> std::sync::MutexGuard<'static, Vec<(String, Caps)>> {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// What is known of the bridge at `addr` (None: not asked yet).
pub fn known(addr: &str) -> Option<Caps> {
    lock().iter().find(|(a, _)| a == addr).map(|(_, c)| *c)
}

/// Record `caps` for `addr`; true when that changed what was known.
fn remember(addr: &str, caps: Caps) -> bool {
    let mut k = lock();
    match k.iter_mut().find(|(a, _)| a == addr) {
        Some((_, c)) if *c == caps => false,
        Some((_, c)) => {
            *c = caps;
            true
        }
        None => {
            k.push((addr.to_string(), caps));
            true
        }
    }
}

/// Whether a LeaseSet encryption list offers an ML-KEM hybrid (5, 6 or 7).
pub fn has_ml_kem(list: &str) -> bool {
    list.split(',').any(|t| matches!(t.trim(), "5" | "6" | "7"))
}

/// The bridge's capabilities; `minor` is what it negotiated on the connection the caller
/// has open. A 3.1 bridge is never taken for more, even if it was once known as more
/// (the router behind the address may have been replaced by an older one).
pub async fn for_bridge(addr: &str, minor: u8) -> Caps {
    if minor <= 1 {
        let c = Caps {
            ml_kem: false,
            datagram2: false,
            primary: false,
        };
        if remember(addr, c) {
            info!(
                "the SAM bridge at {addr} speaks SAM 3.1 only (an i2pd older than 2.58, which has \
                 no ML-KEM and crashes on type 6): sessions use i2cp.leaseSetEncType={ENC_CLASSIC} \
                 (not post-quantum) and STYLE=DATAGRAM"
            );
        }
        return c;
    }
    if let Some(c) = known(addr) {
        return c;
    }
    let (c, how) = if minor == 2 {
        (
            Caps {
                ml_kem: true,
                datagram2: false,
                primary: true,
            },
            "SAM 3.2: emissary, with PRIMARY; its DATAGRAM2 receive path is broken in 0.4.0"
                .to_string(),
        )
    } else {
        match probe(addr).await {
            Ok(x) => x,
            // Not remembered: the bridge is asked again for the next session, and this one
            // goes without (never type 6 on a guess).
            Err(why) => {
                debug!("SAM bridge at {addr}: {why}; this session goes without ML-KEM");
                return Caps {
                    ml_kem: false,
                    datagram2: false,
                    primary: false,
                };
            }
        }
    };
    if remember(addr, c) {
        let line = format!(
            "the SAM bridge at {addr} ({how}): sessions use i2cp.leaseSetEncType={} ({}) and \
             STYLE={}; {}",
            if c.ml_kem { ENC_PQ } else { ENC_CLASSIC },
            if c.ml_kem {
                "post-quantum"
            } else {
                "not post-quantum"
            },
            if c.datagram2 { "DATAGRAM2" } else { "DATAGRAM" },
            if c.primary {
                "a UDP listener's identity is a PRIMARY session whose datagram subsession one \
                 association at a time uses"
            } else {
                "each UDP association has a session of its own"
            }
        );
        // The default needs no word (the demo's first screen stays short); going without
        // post-quantum is said once.
        if c.ml_kem {
            debug!("{line}");
        } else {
            info!("{line}");
        }
    }
    c
}

/// The router refused ML-KEM for a session although the bridge looked able to: later
/// sessions go without it. Logged once per bridge.
pub fn refused_ml_kem(addr: &str, why: &str) {
    let mut c = known(addr).unwrap_or(Caps {
        ml_kem: false,
        datagram2: false,
        primary: false,
    });
    c.ml_kem = false;
    if remember(addr, c) {
        warn!(
            "the router at {addr} refused post-quantum LeaseSet encryption ({why}); its \
             sessions use i2cp.leaseSetEncType={ENC_CLASSIC} (not post-quantum)"
        );
    }
}

/// The router refused STYLE=DATAGRAM2: later datagram sessions use DATAGRAM.
pub fn refused_datagram2(addr: &str, why: &str) {
    let mut c = known(addr).unwrap_or(Caps {
        ml_kem: false,
        datagram2: false,
        primary: false,
    });
    c.datagram2 = false;
    if remember(addr, c) {
        warn!("the router at {addr} refused STYLE=DATAGRAM2 ({why}); UDP uses STYLE=DATAGRAM");
    }
}

/// The router refused STYLE=PRIMARY or SESSION ADD: later identities get a plain STREAM
/// session and each UDP association a session of its own.
pub fn refused_primary(addr: &str, why: &str) {
    let mut c = known(addr).unwrap_or(Caps {
        ml_kem: false,
        datagram2: false,
        primary: false,
    });
    c.primary = false;
    if remember(addr, c) {
        warn!(
            "the router at {addr} refused a PRIMARY session or subsession ({why}); identities \
             use STYLE=STREAM and UDP associations sessions of their own"
        );
    }
}

/// Whether a refusal's MESSAGE is about the LeaseSet encryption types.
pub fn about_encryption(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "enctype",
        "encryption",
        "crypto",
        "ml-kem",
        "mlkem",
        "key type",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Whether a refusal's MESSAGE is about the session style.
pub fn about_style(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("style") || m.contains("datagram2")
}

/// Ask a SAM 3.3 bridge whether it knows STYLE=DATAGRAM2 (see the module comment). Any
/// SESSION STATUS other than a refusal of the style means it does; no answer (Err) means
/// we do not know yet, and the session at hand goes without.
async fn probe(addr: &str) -> Result<(Caps, String), String> {
    let none = Caps {
        ml_kem: false,
        datagram2: false,
        primary: false,
    };
    let id = format!(
        "eepsocks-probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    let asked = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut c = SamSocket::connect(addr).await?;
        c.send_line(&format!(
            "SESSION CREATE STYLE=DATAGRAM2 ID={id} PORT=9 HOST=127.0.0.1"
        ))
        .await?;
        let line = c.read_line().await?;
        ReplyLine::parse(&line)
    })
    .await;
    match asked {
        Ok(Ok(r)) if r.topic == "SESSION" && r.kind == "STATUS" => {
            let refused_style =
                r.get("RESULT") == Some("I2P_ERROR") && r.get("MESSAGE").is_some_and(about_style);
            Ok(if refused_style {
                (
                    none,
                    "SAM 3.3 without DATAGRAM2: older than i2pd 2.58 or Java I2P 2.11".into(),
                )
            } else {
                (
                    Caps {
                        ml_kem: true,
                        datagram2: true,
                        primary: true,
                    },
                    "SAM 3.3 with DATAGRAM2: i2pd 2.58+ or Java I2P 2.11+".into(),
                )
            })
        }
        Ok(Ok(r)) => Ok((
            none,
            format!("unexpected answer {} {} to the probe", r.topic, r.kind),
        )),
        Ok(Err(e)) => Err(format!("capability probe failed: {e}")),
        Err(_) => Err(format!(
            "capability probe unanswered for {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ml_kem_lists() {
        assert!(has_ml_kem("6,4"));
        assert!(has_ml_kem("4, 7"));
        assert!(has_ml_kem("5"));
        assert!(!has_ml_kem("4,0"));
        assert!(!has_ml_kem("4"));
        assert!(!has_ml_kem("16"));
    }

    #[test]
    fn refusal_messages() {
        assert!(about_encryption("unsupported i2cp.leaseSetEncType 6"));
        assert!(about_encryption("Crypto key type 6 is not supported"));
        assert!(!about_encryption("Duplicate destination"));
        assert!(about_style("Unknown STYLE"));
        assert!(!about_style("no DESTINATION"));
    }
}
