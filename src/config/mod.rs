//! Configuration: a TOML file, overridden by command-line flags. Defaults follow the
//! safe choices: loopback only, persistent keys, 3-hop tunnels.

pub mod import;
pub mod password;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// SOCKS listen address.
    pub listen: SocketAddr,
    /// The router's SAM v3 bridge.
    pub sam: String,
    /// Allow a SAM bridge off loopback (it receives the private keys in cleartext).
    pub remote_sam: bool,
    /// Where key files live. Default: $XDG_DATA_HOME/eepsocks or ~/.local/share/eepsocks.
    pub data_dir: Option<PathBuf>,
    /// Key file name (relative to data_dir, or absolute), or "transient".
    pub keys: String,
    /// Signature type for new keys (7 = EdDSA-SHA512-Ed25519).
    pub signature_type: u16,
    /// Seconds a client has to complete its SOCKS request.
    pub handshake_timeout: u64,
    /// Seconds to wait for the router to open a stream (lookup included).
    pub stream_timeout: u64,
    /// Seconds the router may take to create a session (SESSION CREATE: it builds tunnels
    /// first; Java I2P can take minutes). Past it the attempt is dropped and retried.
    pub session_timeout: u64,
    /// Concurrent clients; more are closed at once.
    pub max_clients: usize,
    /// Options for the router's session, i2pd names: `inbound.length`, `outbound.quantity`,
    /// `i2cp.leaseSetEncType`, ... Given values replace the defaults.
    pub options: BTreeMap<String, toml::Value>,
    /// Listeners. When none is given, one listens on `listen` with identity `keys`.
    pub proxy: Vec<Listener>,
    /// hosts.txt URLs inside I2P (`http://name.i2p/hosts.txt`), fetched through the router.
    pub subscriptions: Vec<String>,
    /// Seconds after start before the first fetch.
    pub subscription_delay: u64,
    /// Seconds between fetches.
    pub subscription_interval: u64,
    /// Seconds open connections get to finish after SIGTERM.
    pub drain_timeout: u64,
    /// Loopback address of the status endpoint (/status JSON, /metrics Prometheus);
    /// "off" disables it.
    pub status_listen: String,
    /// Worker threads for the proxy; 0 = one per CPU core. One is the default: it relays
    /// far more than any I2P router carries, and costs less CPU per stream than several
    /// (fewer cross-thread wake-ups), CPU the router beside it can use.
    pub threads: usize,
    /// Which I2P router: "auto" (the SAM bridge at `sam` if one answers, else the
    /// embedded one), "sam" or "embedded".
    pub router: RouterKind,
    /// The embedded router's settings.
    pub embedded: EmbeddedConfig,
    /// Leak filter of the default listener (see `Listener::filter`).
    pub filter: FilterMode,
    /// User-Agent the HTTP filter sends for the default listener (see `Listener::user_agent`).
    pub user_agent: Option<String>,
    /// The IRC filter's account rule for the default listener (see `Listener::irc_hide_account`).
    pub irc_hide_account: bool,
    /// The SAM bridge's login, for a bridge that asks for one (Java I2P, `sam.auth=true`).
    /// i2pd has none: nothing is sent unless set.
    pub sam_user: Option<String>,
    /// Its password in the config file (which then must be readable by its owner only);
    /// `sam_password_file` keeps it out of the config.
    pub sam_password: Option<Secret>,
    /// A file holding the password (its first line), readable by its owner only.
    pub sam_password_file: Option<PathBuf>,
    /// The router's SAM UDP port, where datagrams are sent. Default: the SAM port − 1
    /// (i2pd's fixed choice and Java I2P's default); the embedded router's is known.
    pub sam_udp: Option<String>,
    /// Bytes one UDP datagram to the router may hold (line and payload), when the router
    /// has a limit of its own: emissary reads 8 KiB. Set by the backend, not the file.
    #[serde(skip)]
    pub sam_udp_max: Option<usize>,
    /// `[udp]`: SOCKS5 UDP ASSOCIATE (docs/protocol.md).
    pub udp: UdpConfig,
    /// Tor's extended SOCKS5 error codes on the default listener (see `Listener::extended_errors`).
    pub extended_errors: bool,
    /// `[automap]`: virtual addresses for I2P names, a DNS port and a transparent port.
    /// Off unless present.
    pub automap: Option<AutomapConfig>,
}

/// The connect timeout the router gets for a stream: inside `stream_timeout` (seconds),
/// so its "cannot reach" arrives before ours turns into "timed out".
pub fn router_connect_timeout(stream_timeout: u64) -> Duration {
    let ours = Duration::from_secs(stream_timeout);
    ours - (ours / 4).min(Duration::from_secs(5))
}

/// A login for a SAM bridge that asks for one (Java I2P with `sam.auth=true`).
#[derive(Clone, PartialEq, Eq)]
pub struct SamLogin {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SamLogin {{ user: {:?}, password: <hidden> }}",
            self.user
        )
    }
}

/// A secret from the config: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The first line of a password file that only its owner may read.
fn read_secret_file(path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("sam_password_file {}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        bail!(
            "sam_password_file {} is readable by other users (mode {:o}): chmod 600 it",
            path.display(),
            meta.mode() & 0o777
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("sam_password_file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// `[automap]` (docs/automap.md): applications that resolve names themselves, speak only
/// SOCKS4, or are redirected by the firewall reach I2P names through virtual addresses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomapConfig {
    /// Where virtual addresses come from: an IPv4 network. Loopback by default, so a
    /// virtual address never leaves the machine.
    #[serde(default = "default_automap_network")]
    pub network: crate::naming::standins::Network,
    /// A DNS server (UDP and TCP) answering I2P names with virtual addresses; loopback only.
    pub dns_listen: Option<SocketAddr>,
    /// A transparent TCP port for connections redirected by the firewall; loopback only.
    pub trans_listen: Option<SocketAddr>,
    /// Whose identity DNS and transparent traffic uses; default: the first listener.
    pub listener: Option<String>,
    /// TTL of DNS answers, seconds.
    #[serde(default = "default_automap_ttl")]
    pub ttl: u32,
    /// Seconds a forgotten virtual address stays unused before it may stand for another name.
    #[serde(default = "default_automap_quarantine")]
    pub quarantine: u64,
}

pub(crate) fn default_automap_network() -> crate::naming::standins::Network {
    "127.192.0.0/10".parse().expect("a valid network")
}

pub(crate) fn default_automap_ttl() -> u32 {
    60
}

fn default_automap_quarantine() -> u64 {
    600
}

/// The largest repliable datagram I2P carries.
pub const UDP_HARD_MAX_PAYLOAD: usize = 31_744;

/// `[udp]`: UDP ASSOCIATE on every listener, and its limits (per association unless said).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UdpConfig {
    /// Accept UDP ASSOCIATE (default listener, and `[[proxy]]` listeners without `udp`).
    pub enabled: bool,
    /// Largest datagram payload relayed, bytes (I2P recommends about 11 KB; at most 31744).
    pub max_payload: usize,
    /// Associations open at once per listener; more are refused with 0x01.
    pub max_associations: usize,
    /// Seconds without a datagram either way before an association is closed.
    pub idle_timeout: u64,
    /// Datagrams per second a client may send per association; the excess is dropped.
    pub rate: u32,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            enabled: true,
            max_payload: 11 * 1024,
            max_associations: 16,
            idle_timeout: 300,
            rate: 500,
        }
    }
}

/// What a listener's leak filter does with the bytes of its streams (docs/filters.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// Nothing is filtered.
    None,
    /// IRC rules on every stream of the listener.
    Irc,
    /// HTTP request rules on every stream of the listener.
    Http,
    /// IRC rules on ports 6667-6669, HTTP rules on port 80 when the client speaks HTTP,
    /// everything else untouched.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RouterKind {
    #[default]
    Auto,
    Sam,
    Embedded,
}

/// `[embedded]`: the built-in emissary router. Its keys, netDb and profiles live in
/// `<data_dir>/router`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    pub ntcp2: bool,
    /// 0: a random port, chosen once and kept.
    pub ntcp2_port: u16,
    pub ssu2: bool,
    pub ssu2_port: u16,
    pub ipv4: bool,
    pub ipv6: bool,
    /// The public IPv4 address to publish. emissary-core listens on all interfaces.
    pub host: Option<std::net::Ipv4Addr>,
    /// Publish the address so peers can connect in (a reachable router). Off: firewalled.
    pub publish: bool,
    /// KiB/s the router may use; none: emissary's default (1 MB/s).
    pub bandwidth_kib: Option<usize>,
    /// Share of the bandwidth for other people's tunnels (0.0 - 1.0).
    pub share_ratio: Option<f64>,
    /// Tunnels built through this router for others; 0 turns transit off.
    pub transit_tunnels: Option<usize>,
    /// Reseed from this .su3 or .zip file instead of the reseed servers.
    pub reseed_file: Option<PathBuf>,
    /// Reseed servers (host names); empty: the standard list.
    pub reseed_servers: Vec<String>,
    /// Reseed when fewer routers than this are known.
    pub reseed_threshold: usize,
    /// Threads for the router.
    pub threads: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            ntcp2: true,
            ntcp2_port: 0,
            ssu2: true,
            ssu2_port: 0,
            ipv4: true,
            ipv6: false,
            host: None,
            publish: false,
            bandwidth_kib: None,
            share_ratio: None,
            transit_tunnels: None,
            reseed_file: None,
            reseed_servers: Vec::new(),
            reseed_threshold: 25,
            threads: 2,
        }
    }
}

/// One SOCKS listener and the identity (or identities) behind it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Names the listener in logs, session ids and per-user key directories.
    pub name: String,
    pub listen: SocketAddr,
    /// Key file (relative to data_dir) or "transient". Default: "<name>.dat", a separate
    /// identity per listener. Listeners naming the same file share one identity.
    pub keys: Option<String>,
    /// Share the identity "shared.dat" with the other `shared = true` listeners.
    #[serde(default)]
    pub shared: bool,
    /// "none" (one identity for the listener) or "username" (one per SOCKS username).
    #[serde(default)]
    pub isolate: Isolate,
    /// With isolate = "username": keep per-user keys across restarts (stored under a hash).
    #[serde(default)]
    pub persistent_users: bool,
    /// With isolate = "username": seconds without streams before a user's identity closes.
    #[serde(default = "default_idle")]
    pub idle_timeout: u64,
    /// With isolate = "username": identities open at once. Past it the least recently used
    /// idle one is closed; with none idle, a new username gets 0x01.
    #[serde(default = "default_max_identities")]
    pub max_identities: usize,
    /// Session options for this listener, over the global ones.
    #[serde(default)]
    pub options: BTreeMap<String, toml::Value>,
    /// Require an RFC 1929 login: username = password, or username = "sha256:<hex of
    /// SHA-256 of the password>". SOCKS4 and no-auth clients are then refused.
    #[serde(default)]
    pub auth: BTreeMap<String, String>,
    /// Leak filter for this listener's streams: "auto" (default), "none", "irc", "http".
    #[serde(default)]
    pub filter: FilterMode,
    /// The User-Agent the HTTP filter puts in place of the application's.
    /// Default "MYOB/6.66 (AN/ON)", the one Java I2P and i2pd send.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The IRC filter replaces a `USER` user name or real name that is the login name or
    /// passwd full name of the client's account or eepsocks' own (docs/filters.md). On by
    /// default; off for a bouncer login that happens to be the local login name.
    #[serde(default = "yes")]
    pub irc_hide_account: bool,
    /// UDP ASSOCIATE on this listener; default `[udp] enabled`. false: refused with 0x07.
    #[serde(default)]
    pub udp: Option<bool>,
    /// Send Tor's extended SOCKS5 error codes (0xF0 LeaseSet not found, 0xF6 malformed
    /// address, 0xF7 timed out) instead of the RFC 1928 ones. Off by default.
    #[serde(default)]
    pub extended_errors: bool,
}

impl Listener {
    /// The login check for this listener, if it requires one.
    pub fn auth_check(&self) -> Result<Option<crate::socks::AuthCheck>> {
        if self.auth.is_empty() {
            return Ok(None);
        }
        let mut table = BTreeMap::new();
        for (user, pw) in &self.auth {
            let stored = crate::config::password::Stored::parse(pw)
                .map_err(|e| anyhow::anyhow!("listener {}: auth for {user:?}: {e}", self.name))?;
            table.insert(user.as_bytes().to_vec(), stored);
        }
        Ok(Some(crate::config::password::check(table)))
    }
}

fn yes() -> bool {
    true
}

fn default_max_identities() -> usize {
    64
}

fn default_idle() -> u64 {
    600
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolate {
    #[default]
    None,
    Username,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4447)),
            sam: "127.0.0.1:7656".into(),
            remote_sam: false,
            data_dir: None,
            keys: "eepsocks.dat".into(),
            signature_type: 7,
            handshake_timeout: 30,
            stream_timeout: 60,
            session_timeout: 300,
            max_clients: 512,
            options: BTreeMap::new(),
            proxy: Vec::new(),
            subscriptions: Vec::new(),
            subscription_delay: 180,
            subscription_interval: 12 * 3600,
            drain_timeout: 10,
            status_listen: "127.0.0.1:4446".into(),
            threads: 1,
            router: RouterKind::Auto,
            embedded: EmbeddedConfig::default(),
            filter: FilterMode::Auto,
            user_agent: None,
            irc_hide_account: true,
            sam_user: None,
            sam_password: None,
            sam_password_file: None,
            sam_udp: None,
            sam_udp_max: None,
            udp: UdpConfig::default(),
            extended_errors: false,
            automap: None,
        }
    }
}

/// Session options used unless the config says otherwise.
const DEFAULT_OPTIONS: &[(&str, &str)] = &[
    ("inbound.length", "3"),
    ("outbound.length", "3"),
    ("inbound.quantity", "3"),
    ("outbound.quantity", "3"),
    // No i2cp.leaseSetEncType here: left unset, each session gets "6,4" (ML-KEM-768 hybrid,
    // X25519 for peers without it) where the bridge has ML-KEM and "4" elsewhere, since
    // i2pd 2.45 crashes on type 6 (src/i2p/sam/caps.rs). A configured value is sent as is.
    // A client identity needs no published LeaseSet: peers get it with our first messages
    // (both i2pd and Java I2P do the same for their SOCKS tunnels).
    ("i2cp.dontPublishLeaseSet", "true"),
];

/// What the command line says over the config file. Kept apart from `Config` so a reload
/// applies it again to the file it reads: command-line flags hold for the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub sam: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The (first) listener's address.
    pub listen: Option<SocketAddr>,
    /// Throw-away identities for every listener, no key files.
    pub transient: bool,
    pub router: Option<RouterKind>,
    /// Router options set over the file's (the demo's one-hop tunnels).
    pub options: Vec<(String, String)>,
    /// The status endpoint (the demo's any-port default when the file sets none).
    pub status_listen: Option<String>,
}

impl Overrides {
    pub fn apply(&self, cfg: &mut Config) {
        for (k, v) in &self.options {
            cfg.options
                .insert(k.clone(), toml::Value::String(v.clone()));
        }
        if let Some(s) = &self.status_listen {
            cfg.status_listen = s.clone();
        }
        if let Some(s) = &self.sam {
            cfg.sam = s.clone();
        }
        if self.data_dir.is_some() {
            cfg.data_dir = self.data_dir.clone();
        }
        if let Some(r) = self.router {
            cfg.router = r;
        }
        if let Some(l) = self.listen {
            match cfg.proxy.first_mut() {
                Some(p) => p.listen = l,
                None => cfg.listen = l,
            }
        }
        if self.transient {
            cfg.keys = "transient".into();
            for p in &mut cfg.proxy {
                p.keys = Some("transient".into());
                p.shared = false;
                p.persistent_users = false;
            }
        }
    }
}

/// Where the settings come from: the config file (if any) and the command line. The daemon
/// reads it again on every reload.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    pub file: Option<PathBuf>,
    pub overrides: Overrides,
}

impl ConfigSource {
    /// The file with the overrides applied, not yet validated.
    pub fn read(&self) -> Result<Config> {
        let mut cfg = Config::load(self.file.as_deref())?;
        self.overrides.apply(&mut cfg);
        Ok(cfg)
    }

    /// `read`, then `validate`.
    pub fn load(&self) -> Result<Config> {
        let cfg = self.read()?;
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Config {
    /// Whether every identity is transient (nothing may be written: `--transient`).
    pub fn all_transient(&self) -> bool {
        self.keys == "transient"
            && self
                .proxy
                .iter()
                .all(|p| p.keys.as_deref() == Some("transient"))
    }

    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("eepsocks");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".local/share/eepsocks"),
            None => PathBuf::from("eepsocks-data"),
        }
    }

    /// The status endpoint's address, None when "off".
    pub fn status_addr(&self) -> Result<Option<SocketAddr>> {
        if self.status_listen == "off" {
            return Ok(None);
        }
        Ok(Some(self.status_listen.parse().with_context(|| {
            format!(
                "status_listen {:?}: an address like 127.0.0.1:4446, or \"off\"",
                self.status_listen
            )
        })?))
    }

    /// The listeners to run: the `[[proxy]]` tables, or the single default one.
    pub fn listeners(&self) -> Vec<Listener> {
        if !self.proxy.is_empty() {
            return self.proxy.clone();
        }
        vec![Listener {
            name: "eepsocks".into(),
            listen: self.listen,
            keys: Some(self.keys.clone()),
            shared: false,
            isolate: Isolate::None,
            persistent_users: false,
            idle_timeout: default_idle(),
            max_identities: default_max_identities(),
            options: BTreeMap::new(),
            auth: BTreeMap::new(),
            filter: self.filter,
            user_agent: self.user_agent.clone(),
            irc_hide_account: self.irc_hide_account,
            udp: None,
            extended_errors: self.extended_errors,
        }]
    }

    /// Whether listener `l` takes UDP ASSOCIATE: its own `udp`, else `[udp] enabled`.
    pub fn udp_on(&self, l: &Listener) -> bool {
        l.udp.unwrap_or(self.udp.enabled)
    }

    /// Where datagrams go: `sam_udp`, or the SAM port − 1 on the SAM bridge's address.
    pub fn sam_udp_addr(&self) -> Option<SocketAddr> {
        if let Some(a) = &self.sam_udp {
            return a.parse().ok();
        }
        let sam: SocketAddr = self.sam.parse().ok()?;
        Some(SocketAddr::new(sam.ip(), sam.port().checked_sub(1)?))
    }

    /// The listener whose identity and virtual addresses automap uses, if automap is on.
    pub fn automap_listener(&self) -> Option<String> {
        let a = self.automap.as_ref()?;
        match &a.listener {
            Some(n) => Some(n.clone()),
            None => self.listeners().first().map(|l| l.name.clone()),
        }
    }

    /// Key file for a listener's own identity, or None for transient keys.
    pub fn listener_key_path(&self, l: &Listener) -> Option<PathBuf> {
        let keys = match (&l.keys, l.shared) {
            (Some(k), _) => k.clone(),
            (None, true) => "shared.dat".into(),
            (None, false) => format!("{}.dat", l.name),
        };
        if keys == "transient" {
            return None;
        }
        Some(normalize(&self.data_dir().join(keys)))
    }

    /// Merged session options, checked so nothing can break the SAM command line.
    pub fn session_options(&self) -> Result<Vec<(String, String)>> {
        self.listener_options(&BTreeMap::new())
    }

    /// The SAM login, if the config gives one (password read from its file).
    pub fn sam_login(&self) -> Result<Option<SamLogin>> {
        let password = match (&self.sam_password, &self.sam_password_file) {
            (Some(_), Some(_)) => bail!("give sam_password or sam_password_file, not both"),
            (Some(p), None) => Some(p.0.clone()),
            (None, Some(f)) => Some(read_secret_file(f)?),
            (None, None) => None,
        };
        let login = match (&self.sam_user, password) {
            (None, None) => return Ok(None),
            (Some(user), Some(password)) => SamLogin {
                user: user.clone(),
                password,
            },
            (None, Some(_)) => bail!("sam_password needs sam_user (the SAM bridge's login name)"),
            (Some(_), None) => bail!("sam_user needs sam_password_file (or sam_password)"),
        };
        let printable = |s: &str| !s.is_empty() && s.chars().all(|c| !c.is_control());
        if !printable(&login.user) || !printable(&login.password) {
            bail!("sam_user and the SAM password must be non-empty, without control characters");
        }
        Ok(Some(login))
    }

    /// Defaults, then global options, then the listener's.
    pub fn listener_options(
        &self,
        extra: &BTreeMap<String, toml::Value>,
    ) -> Result<Vec<(String, String)>> {
        let mut m: BTreeMap<String, String> = DEFAULT_OPTIONS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in self.options.iter().chain(extra) {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => bail!("option {k}: unsupported value {other}"),
            };
            m.insert(k.clone(), v);
        }
        for (k, v) in &m {
            let ok = |s: &str, extra: &str| {
                !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c)
                    })
            };
            if !ok(k, "") || !ok(v, ",:/+~=") {
                bail!("option {k:?} = {v:?}: only letters, digits and ._-,:/+~= are allowed");
            }
        }
        Ok(m.into_iter().collect())
    }

    /// The whole config, one section after the other; the first mistake found is the error.
    pub fn validate(&self) -> Result<()> {
        self.check_signature_type()?;
        self.sam_login()?;
        let addrs = self.check_listeners()?;
        self.check_sam_address()?;
        self.check_status_listen()?;
        if let Some(a) = &self.automap {
            self.check_automap(a, &addrs)?;
        }
        self.check_subscriptions()?;
        if self.max_clients == 0 {
            bail!("max_clients must be at least 1");
        }
        self.check_udp()?;
        self.check_timeouts()?;
        self.check_key_files()?;
        self.session_options()?;
        Ok(())
    }

    fn check_signature_type(&self) -> Result<()> {
        // Java I2P and i2pd read SAM commands of at most 8 KiB: ML-DSA-65/87 keys alone
        // make SESSION CREATE longer than that.
        match self.signature_type {
            0..=8 | 11 | 12 => {}
            13 | 14 => bail!(
                "signature_type {}: its private keys make SESSION CREATE longer than the 8 KiB \
             command line SAM bridges accept; use 7 (EdDSA, the default) or 12",
                self.signature_type
            ),
            t => bail!("signature_type {t}: not an I2P signature type (7 = EdDSA is the default)"),
        }
        Ok(())
    }

    /// Each listener on its own, and their names and addresses apart. The addresses.
    fn check_listeners(&self) -> Result<std::collections::HashSet<SocketAddr>> {
        let mut names = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for l in self.listeners() {
            check_listener(&l)?;
            if !names.insert(l.name.clone()) {
                bail!("two listeners are named {:?}", l.name);
            }
            // Port 0: the kernel picks a free port for each, so they never collide.
            if !addrs.insert(l.listen) && l.listen.port() != 0 {
                bail!("two listeners listen on {}", l.listen);
            }
            self.listener_options(&l.options)?;
            l.auth_check()?;
        }
        Ok(addrs)
    }

    fn check_sam_address(&self) -> Result<()> {
        // SESSION CREATE carries the private keys in cleartext.
        let sam_local = match self.sam.rsplit_once(':') {
            Some(("localhost", _)) => true,
            _ => self
                .sam
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback()),
        };
        if !sam_local && !self.remote_sam {
            bail!(
                "sam = {:?} is not a loopback address: eepsocks sends its private keys to the \
                 SAM bridge in cleartext. Use a router on this machine, or set \
                 remote_sam = true if the link is private (e.g. a VPN or an SSH tunnel)",
                self.sam
            );
        }
        Ok(())
    }

    fn check_status_listen(&self) -> Result<()> {
        if let Some(a) = self.status_addr()? {
            if !a.ip().is_loopback() {
                bail!("status_listen {a}: loopback only");
            }
        }
        Ok(())
    }

    /// `[automap]`: its network, its listener, and its ports; `addrs`: the listeners'.
    fn check_automap(
        &self,
        a: &AutomapConfig,
        addrs: &std::collections::HashSet<SocketAddr>,
    ) -> Result<()> {
        let net = a.network;
        // The other listeners' RESOLVE stand-ins live there (and what tells the
        // automap listener from the others is that its table is not over it).
        let resolve = crate::naming::standins::Network::RESOLVE;
        if net.overlaps(resolve) {
            bail!("[automap] network {net} overlaps {resolve}, which RESOLVE's stand-ins use");
        }
        let name = self.automap_listener().unwrap_or_default();
        let Some(listener) = self.listeners().into_iter().find(|l| l.name == name) else {
            bail!("[automap] listener {name:?}: no such listener");
        };
        // DNS and redirected connections carry no login: they would use the identity
        // without one.
        if !listener.auth.is_empty() {
            bail!(
                "[automap] listener {name:?} requires a login ([proxy.auth]); the DNS and \
                 transparent ports carry none: give automap a listener without one"
            );
        }
        self.check_automap_network(a, addrs)?;
        if matches!(a.trans_listen, Some(std::net::SocketAddr::V6(_))) {
            bail!("[automap] trans_listen: an IPv4 loopback address (virtual addresses are IPv4)");
        }
        for (key, addr) in [
            ("dns_listen", a.dns_listen),
            ("trans_listen", a.trans_listen),
        ] {
            let Some(addr) = addr else { continue };
            // No login on these ports: anyone who can reach them uses the identity.
            if !addr.ip().is_loopback() {
                bail!("[automap] {key} {addr}: loopback only");
            }
            if addr.port() != 0 && addrs.contains(&addr) {
                bail!("[automap] {key} {addr}: a SOCKS listener has that address");
            }
        }
        if a.dns_listen.is_some()
            && a.dns_listen == a.trans_listen
            && a.dns_listen.is_some_and(|d| d.port() != 0)
        {
            bail!("[automap] dns_listen and trans_listen must differ");
        }
        if !(1..=3600).contains(&a.ttl) {
            bail!("[automap] ttl = {}: 1 to 3600 seconds", a.ttl);
        }
        // A resolver may keep an answer for its TTL: the address must not change
        // meaning while it does.
        if a.quarantine < u64::from(a.ttl) || a.quarantine > 7 * 24 * 3600 {
            bail!(
                "[automap] quarantine = {}: at least ttl ({}) and at most a week",
                a.quarantine,
                a.ttl
            );
        }

        Ok(())
    }

    /// A virtual address must never be one something answers at.
    fn check_automap_network(
        &self,
        a: &AutomapConfig,
        addrs: &std::collections::HashSet<SocketAddr>,
    ) -> Result<()> {
        let net = a.network;
        // A virtual address must never be one something answers at: the resolver
        // stub, this machine's own services, eepsocks' ports.
        let mut taken: Vec<std::net::IpAddr> = vec![
            std::net::Ipv4Addr::new(127, 0, 0, 1).into(),
            std::net::Ipv4Addr::new(127, 0, 0, 53).into(),
        ];
        taken.extend(addrs.iter().map(|a: &SocketAddr| a.ip()));
        taken.extend(a.dns_listen.iter().chain(&a.trans_listen).map(|s| s.ip()));
        taken.extend(self.status_addr()?.map(|s| s.ip()));
        for ip in taken {
            if let std::net::IpAddr::V4(v4) = ip {
                if net.contains(v4) {
                    bail!(
                        "[automap] network {net} contains {v4}, an address in use \
                         (127.192.0.0/10, the default, is safe)"
                    );
                }
            }
        }
        Ok(())
    }

    fn check_subscriptions(&self) -> Result<()> {
        for u in &self.subscriptions {
            crate::naming::http::parse_url(u)?;
        }
        if self.subscription_interval < 10 && !self.subscriptions.is_empty() {
            bail!("subscription_interval must be at least 10 seconds");
        }
        Ok(())
    }

    fn check_udp(&self) -> Result<()> {
        let u = &self.udp;
        if u.max_payload == 0 || u.max_payload > UDP_HARD_MAX_PAYLOAD {
            bail!("[udp] max_payload from 1 to {UDP_HARD_MAX_PAYLOAD} bytes");
        }
        if u.max_associations == 0 || u.max_associations > 4096 {
            bail!("[udp] max_associations from 1 to 4096");
        }
        if u.idle_timeout == 0 || u.idle_timeout > 24 * 3600 {
            bail!("[udp] idle_timeout from 1 to 86400 seconds");
        }
        if u.rate == 0 {
            bail!("[udp] rate must be at least 1 datagram per second");
        }
        if let Some(a) = &self.sam_udp {
            a.parse::<SocketAddr>()
                .with_context(|| format!("sam_udp {a:?}: an address like 127.0.0.1:7655"))?;
        }
        Ok(())
    }

    fn check_timeouts(&self) -> Result<()> {
        if self.handshake_timeout == 0 || self.stream_timeout == 0 || self.session_timeout == 0 {
            bail!("timeouts must be at least 1 second");
        }
        // Beyond these, a value is a typo; near u64::MAX it would overflow a deadline.
        let day = 24 * 3600;
        for (name, v, max) in [
            ("handshake_timeout", self.handshake_timeout, day),
            ("stream_timeout", self.stream_timeout, day),
            ("session_timeout", self.session_timeout, day),
            ("drain_timeout", self.drain_timeout, day),
            ("subscription_delay", self.subscription_delay, 30 * day),
            (
                "subscription_interval",
                self.subscription_interval,
                30 * day,
            ),
        ] {
            if v > max {
                bail!("{name} = {v}: at most {max} seconds");
            }
        }
        Ok(())
    }

    /// Per-listener identity limits, and key files shared only on purpose.
    fn check_key_files(&self) -> Result<()> {
        let day = 24 * 3600;
        // Key file -> (listener, whether it named the file on purpose).
        let mut key_files: std::collections::HashMap<PathBuf, (String, bool)> = Default::default();
        for l in self.listeners() {
            if l.max_identities == 0 || l.max_identities > 4096 {
                bail!("listener {}: max_identities from 1 to 4096", l.name);
            }
            if l.idle_timeout > 30 * day {
                bail!(
                    "listener {}: idle_timeout at most {} seconds",
                    l.name,
                    30 * day
                );
            }
            if l.isolate == Isolate::Username {
                continue;
            }
            let Some(path) = self.listener_key_path(&l) else {
                continue;
            };
            // Listeners share an identity only when they say so (the same `keys`, or
            // `shared = true`), never because a default file name happens to match.
            let explicit = l.keys.is_some() || l.shared;
            if let Some((other, other_explicit)) = key_files.get(&path) {
                if !explicit || !other_explicit {
                    bail!(
                        "listeners {other} and {} would share the key file {} by accident; \
                         give one of them its own `keys`",
                        l.name,
                        path.display()
                    );
                }
            }
            key_files.insert(path, (l.name.clone(), explicit));
        }
        Ok(())
    }
}

/// One listener's own settings.
fn check_listener(l: &Listener) -> Result<()> {
    if !l.listen.ip().is_loopback() && l.auth.is_empty() {
        bail!(
            "refusing to listen on {} without [proxy.auth]: a SOCKS port reachable \
             from the network lets anyone use your I2P identity; listen on 127.0.0.1 \
             or ::1, or require a login",
            l.listen
        );
    }
    if l.name.is_empty()
        || l.name.len() > 32
        || !l
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "listener name {:?}: 1-32 letters, digits, '-' or '_'",
            l.name
        );
    }
    if let Some(ua) = &l.user_agent {
        // It goes into a header line as is: no control bytes, nothing that could
        // start another header.
        if ua.is_empty() || ua.len() > 256 || !ua.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            bail!(
                "listener {}: user_agent {ua:?}: 1-256 printable ASCII characters",
                l.name
            );
        }
    }
    if l.keys.is_some() && l.shared {
        bail!(
            "listener {}: give either keys or shared = true, not both",
            l.name
        );
    }
    if l.isolate == Isolate::Username && l.idle_timeout == 0 {
        bail!(
            "listener {}: idle_timeout must be at least 1 second",
            l.name
        );
    }
    Ok(())
}

/// `a/./b/../c` as `a/c`, without touching the file system: two spellings of one key file
/// must be one identity (one session), not two sessions on one key.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per section of `validate`: a config with one mistake there, and the words
    /// its error must carry. A valid base first, so each row fails for its own reason.
    #[test]
    fn each_section_refuses_its_own_mistake() {
        let base = "[[proxy]]\nname = \"a\"\nlisten = \"127.0.0.1:4447\"\n";
        let ok: Config = toml::from_str(base).unwrap();
        ok.validate().unwrap();
        let rows: [(&str, &str); 22] = [
            ("signature_type = 13\n", "signature_type 13"),
            ("signature_type = 9\n", "not an I2P signature type"),
            ("[[proxy]]\nname = \"b\"\nlisten = \"0.0.0.0:1\"\n", "without [proxy.auth]"),
            ("[[proxy]]\nname = \"b c\"\nlisten = \"127.0.0.1:1\"\n", "listener name \"b c\""),
            ("[[proxy]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n", "two listeners are named"),
            ("[[proxy]]\nname = \"b\"\nlisten = \"127.0.0.1:4447\"\n", "two listeners listen on"),
            ("[[proxy]]\nname = \"b\"\nlisten = \"127.0.0.1:1\"\nuser_agent = \"\"\n", "user_agent"),
            ("[[proxy]]\nname = \"b\"\nlisten = \"127.0.0.1:1\"\nkeys = \"k.dat\"\nshared = true\n", "not both"),
            ("sam = \"10.1.1.1:7656\"\n", "not a loopback address"),
            ("status_listen = \"0.0.0.0:4446\"\n", "status_listen 0.0.0.0:4446: loopback only"),
            ("[automap]\nnetwork = \"255.0.0.0/8\"\n", "overlaps"),
            ("[automap]\nlistener = \"zz\"\n", "no such listener"),
            ("[automap]\nnetwork = \"127.0.0.0/8\"\n", "an address in use"),
            ("[automap]\ndns_listen = \"127.0.0.1:4447\"\n", "a SOCKS listener has that address"),
            ("[automap]\nttl = 0\n", "ttl = 0"),
            ("[automap]\nttl = 60\nquarantine = 10\n", "quarantine = 10"),
            ("subscriptions = [\"ftp://x.i2p/\"]\n", "only http:// URLs inside I2P"),
            ("max_clients = 0\n", "max_clients"),
            ("[udp]\nmax_associations = 0\n", "[udp] max_associations"),
            ("stream_timeout = 0\n", "timeouts must be at least 1 second"),
            ("drain_timeout = 9999999\n", "drain_timeout = 9999999"),
            ("[[proxy]]\nname = \"b\"\nlisten = \"127.0.0.1:1\"\nmax_identities = 0\n", "max_identities from 1 to 4096"),
        ];
        for (extra, words) in rows {
            // Top-level keys before the tables, tables after.
            let text = if extra.starts_with('[') {
                format!("{base}{extra}")
            } else {
                format!("{extra}{base}")
            };
            let c: Config = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let e = format!("{:#}", c.validate().expect_err(&text));
            assert!(e.contains(words), "{text}\n-> {e}\n(expected {words:?})");
        }
    }

    /// The README's example config is a config eepsocks accepts, and means what its
    /// comments say (a key after a `[table]` header would silently land in that table).
    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../README.md");
        let start = readme
            .find("# eepsocks.toml; every key is optional")
            .expect("example in README");
        let body: String = readme[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("    "))
            .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
            .collect();
        let c: Config = toml::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
        c.validate().unwrap();
        assert_eq!(c.router, RouterKind::Auto);
        assert!(
            !c.options.contains_key("router"),
            "router landed in [options]"
        );
        assert_eq!(c.filter, FilterMode::Auto);
        assert_eq!(c.proxy.len(), 2);
        assert_eq!(c.proxy[0].filter, FilterMode::Irc);
        assert_eq!(c.proxy[1].filter, FilterMode::Auto);
    }

    /// The packaged config (dist/eepsocks.toml, for /etc/eepsocks) is accepted, and keeps
    /// to the SAM bridge: a service must not start a router by surprise.
    #[test]
    fn dist_config_parses() {
        let c: Config = toml::from_str(include_str!("../../dist/eepsocks.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.router, RouterKind::Sam);
        assert_eq!(c.listeners().len(), 1);
        assert!(c.listeners()[0].listen.ip().is_loopback());
    }

    #[test]
    fn filter_settings() {
        let c: Config = toml::from_str("filter = \"none\"\nuser_agent = \"X/1\"").unwrap();
        let l = &c.listeners()[0];
        assert_eq!(
            (l.filter, l.user_agent.as_deref()),
            (FilterMode::None, Some("X/1"))
        );
        assert!(toml::from_str::<Config>("filter = \"tls\"").is_err());
        for bad in ["", "a\r\nX-Injected: 1", "tab\there", &"x".repeat(257)] {
            let c = Config {
                user_agent: Some(bad.to_string()),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "user_agent {bad:?} accepted");
        }
    }

    #[test]
    fn irc_hide_account_is_on_unless_turned_off() {
        let c: Config = toml::from_str("").unwrap();
        assert!(c.listeners()[0].irc_hide_account);
        let c: Config = toml::from_str("irc_hide_account = false").unwrap();
        assert!(!c.listeners()[0].irc_hide_account);
        let c: Config = toml::from_str(
            "[[proxy]]\nname = \"a\"\nlisten = \"127.0.0.1:1\"\n\
             [[proxy]]\nname = \"b\"\nlisten = \"127.0.0.1:2\"\nirc_hide_account = false\n",
        )
        .unwrap();
        let on: Vec<bool> = c.listeners().iter().map(|l| l.irc_hide_account).collect();
        assert_eq!(on, [true, false]);
    }

    #[test]
    fn defaults_and_overrides() {
        let c: Config = toml::from_str(
            r#"
            listen = "127.0.0.1:5555"
            keys = "transient"
            [options]
            "inbound.length" = 0
            "i2cp.leaseSetEncType" = "6,4,0"
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.listen.port(), 5555);
        assert_eq!(c.listener_key_path(&c.listeners()[0]), None);
        let o = c.session_options().unwrap();
        assert!(o.contains(&("inbound.length".into(), "0".into())));
        assert!(o.contains(&("outbound.length".into(), "3".into())));
        assert!(o.contains(&("i2cp.leaseSetEncType".into(), "6,4,0".into())));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let c: Config = toml::from_str("listen = \"0.0.0.0:4447\"").unwrap();
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("[options]\n\"a\" = \"1 STREAM CONNECT\"").unwrap();
        assert!(c.validate().is_err());
        let c: Config = toml::from_str("[options]\n\"a\" = \"x\\nHELLO\"").unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn listeners_and_identities() {
        let c: Config = toml::from_str(
            r#"
            data_dir = "/d"
            [[proxy]]
            name = "irc"
            listen = "127.0.0.1:4448"
            [[proxy]]
            name = "monero"
            listen = "127.0.0.1:4449"
            keys = "transient"
            [[proxy]]
            name = "apps"
            listen = "127.0.0.1:4450"
            isolate = "username"
            persistent_users = true
            [proxy.options]
            "inbound.length" = 1
            [[proxy]]
            name = "a"
            listen = "127.0.0.1:4451"
            shared = true
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        let ls = c.listeners();
        assert_eq!(ls.len(), 4);
        assert_eq!(c.listener_key_path(&ls[0]), Some("/d/irc.dat".into()));
        assert_eq!(c.listener_key_path(&ls[1]), None);
        assert_eq!(ls[2].isolate, Isolate::Username);
        assert_eq!(c.listener_key_path(&ls[3]), Some("/d/shared.dat".into()));
        let o = c.listener_options(&ls[2].options).unwrap();
        assert!(o.contains(&("inbound.length".into(), "1".into())));
        // the implicit default listener keeps the single-listener settings
        let d = Config::default();
        assert_eq!(d.listeners()[0].listen.port(), 4447);
        assert!(d
            .listener_key_path(&d.listeners()[0])
            .unwrap()
            .ends_with("eepsocks.dat"));
        let bad: Config =
            toml::from_str("[[proxy]]\nname = \"x y\"\nlisten = \"127.0.0.1:1\"\n").unwrap();
        assert!(bad.validate().is_err());
        let bad: Config =
            toml::from_str("[[proxy]]\nname = \"x\"\nlisten = \"10.0.0.1:1\"\n").unwrap();
        assert!(bad.validate().is_err());
    }

    fn proxies(tables: &[&str]) -> Config {
        let mut t = String::from("data_dir = \"/d\"\n");
        for (i, extra) in tables.iter().enumerate() {
            t += &format!("[[proxy]]\nlisten = \"127.0.0.1:{}\"\n{extra}\n", 5000 + i);
        }
        toml::from_str(&t).unwrap()
    }

    /// Identities are shared only on purpose; two spellings of a key file are one file.
    #[test]
    fn accidental_key_sharing_is_refused() {
        // A listener named "shared" would silently use the shared = true listeners' keys.
        let c = proxies(&["name = \"shared\"", "name = \"a\"\nshared = true"]);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("by accident"), "{e}");
        let c = proxies(&["name = \"a\"\nshared = true", "name = \"shared\""]);
        assert!(c.validate().is_err());
        let c = proxies(&["name = \"irc\"", "name = \"b\"\nkeys = \"irc.dat\""]);
        assert!(c.validate().is_err());
        // Said on purpose: fine, and one path however it is spelled.
        let c = proxies(&[
            "name = \"a\"\nkeys = \"x/../k.dat\"",
            "name = \"b\"\nkeys = \"./k.dat\"",
        ]);
        c.validate().unwrap();
        let ls = c.listeners();
        assert_eq!(c.listener_key_path(&ls[0]), Some("/d/k.dat".into()));
        assert_eq!(c.listener_key_path(&ls[0]), c.listener_key_path(&ls[1]));
        let c = proxies(&["name = \"a\"\nshared = true", "name = \"b\"\nshared = true"]);
        c.validate().unwrap();
    }

    /// An option value with a space, a quote or a backslash would break (or, unquoted,
    /// extend) the SAM command line: refused when the config is read, for every router.
    #[test]
    fn option_values_that_would_break_the_command_line_are_refused() {
        for v in ["a b", "a\"b", "a\\b", "x\ny", "tab\there", ""] {
            let c: Config =
                toml::from_str(&format!("[options]\n\"inbound.nickname\" = {v:?}\n")).unwrap();
            let e = c.session_options().unwrap_err().to_string();
            assert!(e.contains("only letters, digits"), "{v:?}: {e}");
        }
        let c: Config = toml::from_str("[options]\n\"i2cp.leaseSetEncType\" = \"4,0\"\n").unwrap();
        assert!(c.session_options().is_ok());
    }

    #[test]
    fn sam_logins_are_checked_and_never_printed() {
        let c: Config = toml::from_str("sam_user = \"u\"\nsam_password = \"secret\"\n").unwrap();
        assert_eq!(c.sam_login().unwrap().unwrap().password, "secret");
        assert!(!format!("{c:?}").contains("secret"));
        assert!(!format!("{:?}", c.sam_login().unwrap()).contains("secret"));
        let c: Config = toml::from_str("sam_user = \"u\"\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sam_password_file"));
        let c: Config = toml::from_str("sam_password = \"p\"\n").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("sam_user"));
        for t in [13, 14, 9, 99] {
            let c: Config = toml::from_str(&format!("signature_type = {t}\n")).unwrap();
            assert!(c.validate().is_err(), "{t}");
        }
    }

    /// Values that would overflow a deadline (drain_timeout near u64::MAX panicked at
    /// SIGTERM) are refused when the config is read.
    #[test]
    fn huge_durations_are_refused() {
        for key in [
            "drain_timeout",
            "handshake_timeout",
            "stream_timeout",
            "session_timeout",
            "subscription_interval",
        ] {
            let c: Config = toml::from_str(&format!("{key} = 9223372036854775807")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        let c =
            proxies(&["name = \"u\"\nisolate = \"username\"\nidle_timeout = 9223372036854775807"]);
        assert!(c.validate().is_err());
    }

    /// Keys never go to a SAM bridge off this machine unless the config says so.
    #[test]
    fn remote_sam_needs_opting_in() {
        for (sam, ok) in [
            ("127.0.0.1:7656", true),
            ("[::1]:7656", true),
            ("localhost:7656", true),
            ("192.168.1.5:7656", false),
            ("router.lan:7656", false),
        ] {
            let c: Config = toml::from_str(&format!("sam = \"{sam}\"")).unwrap();
            assert_eq!(c.validate().is_ok(), ok, "{sam}");
            let c: Config = toml::from_str(&format!("sam = \"{sam}\"\nremote_sam = true")).unwrap();
            c.validate().unwrap();
        }
    }
}
