//! Import the SOCKS proxies of an existing router configuration into an eepsocks config:
//! i2pd's `i2pd.conf` (`[socksproxy]`), i2pd's `tunnels.conf` (`type = socks`) and Java
//! I2P's `i2ptunnel.config` (`type=sockstunnel`). Whatever has no equivalent is reported,
//! never silently dropped; outproxies are refused by design.

use std::collections::BTreeMap;

/// A converted listener and the notes about what did not carry over.
#[derive(Debug, Default)]
pub struct Imported {
    pub listeners: Vec<toml::Table>,
    pub sam: Option<String>,
    pub notes: Vec<String>,
}

impl Imported {
    /// The eepsocks TOML config.
    pub fn to_toml(&self) -> String {
        let mut root = toml::Table::new();
        if let Some(s) = &self.sam {
            root.insert("sam".into(), toml::Value::String(s.clone()));
        }
        root.insert(
            "proxy".into(),
            toml::Value::Array(
                self.listeners
                    .iter()
                    .cloned()
                    .map(toml::Value::Table)
                    .collect(),
            ),
        );
        toml::to_string(&root).unwrap_or_default()
    }
}

/// Options passed through to the session unchanged (i2pd and Java share these names).
fn passes_through(key: &str) -> bool {
    [
        "inbound.",
        "outbound.",
        "i2cp.",
        "i2p.streaming.",
        "latency.",
        "crypto.",
    ]
    .iter()
    .any(|p| key.starts_with(p))
        || key == "explicitPeers"
}

/// Parse INI text into sections of key = value (keys before any section go to "").
/// i2pd also accepts `section.key = value` at the top level.
fn ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    // top-level dotted keys: socksproxy.port = 4447
    if let Some(top) = out.remove("") {
        for (k, v) in top {
            match k.split_once('.') {
                Some((s, rest)) => {
                    out.entry(s.to_string())
                        .or_default()
                        .insert(rest.to_string(), v);
                }
                None => {
                    out.entry(String::new()).or_default().insert(k, v);
                }
            }
        }
    }
    out
}

fn clean_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    if n.is_empty() {
        "imported".into()
    } else {
        n
    }
}

/// Shared by the i2pd formats: one section's SOCKS settings to a listener.
fn i2pd_listener(
    name: &str,
    sec: &BTreeMap<String, String>,
    default_port: Option<&str>,
    default_keys: &str,
    notes: &mut Vec<String>,
) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("name".into(), clean_name(name).into());
    let addr = sec
        .get("address")
        .map(String::as_str)
        .unwrap_or("127.0.0.1");
    let port = sec
        .get("port")
        .map(String::as_str)
        .or(default_port)
        .unwrap_or("4447");
    let ip: Option<std::net::IpAddr> = addr.parse().ok();
    let port_num: Option<u16> = port.parse().ok();
    let listen = if let (Some(ip), Some(p)) = (ip.filter(|i| i.is_loopback()), port_num) {
        // SocketAddr writes IPv6 in brackets ([::1]:4447), which the config can read back.
        std::net::SocketAddr::new(ip, p).to_string()
    } else {
        notes.push(format!(
            "{name}: listened on {addr}; eepsocks listens on loopback only (127.0.0.1:{port})"
        ));
        format!("127.0.0.1:{port}")
    };
    t.insert("listen".into(), listen.into());
    let keys = sec.get("keys").map(String::as_str).unwrap_or(default_keys);
    if keys.is_empty() || keys == "shareddest" {
        notes.push(format!(
            "{name}: used the router's shared destination; it gets its own identity here"
        ));
    } else if keys.starts_with("transient") {
        t.insert("keys".into(), "transient".into());
        notes.push(format!(
            "{name}: transient keys kept (eepsocks' default is a persistent identity)"
        ));
    } else {
        t.insert("keys".into(), keys.into());
        notes.push(format!(
            "{name}: keys {keys}: copy it from the router's data directory with `eepsocks keys import {keys} --name {}`, or set keys to its path",
            clean_name(name)
        ));
    }
    let mut opts = toml::Table::new();
    for (k, v) in sec {
        match k.as_str() {
            "enabled" | "type" | "address" | "port" | "keys" => {}
            "signaturetype" if v == "7" => {}
            "signaturetype" => notes.push(format!(
                "{name}: signaturetype {v}: set signature_type = {v} (global) if you need it"
            )),
            "outproxy" | "outproxy.enabled" | "outproxyport" | "destinationport" => {
                if k == "outproxy" || (k == "outproxy.enabled" && v == "true") {
                    notes.push(format!(
                        "{name}: outproxy ({k} = {v}) dropped: eepsocks reaches I2P only, by design"
                    ));
                }
            }
            k if passes_through(k) => {
                opts.insert(k.to_string(), v.clone().into());
            }
            other => notes.push(format!("{name}: {other} = {v} has no eepsocks equivalent")),
        }
    }
    if !opts.is_empty() {
        t.insert("options".into(), toml::Value::Table(opts));
    }
    t
}

/// i2pd.conf: the `[socksproxy]` section (and the SAM bridge address).
pub fn from_i2pd_conf(text: &str) -> Imported {
    let s = ini(text);
    let mut out = Imported::default();
    if let Some(sam) = s.get("sam") {
        if sam.get("enabled").map(String::as_str) != Some("false") {
            let addr = sam
                .get("address")
                .map(String::as_str)
                .unwrap_or("127.0.0.1");
            let port = sam.get("port").map(String::as_str).unwrap_or("7656");
            let ip: Option<std::net::IpAddr> = addr.parse().ok();
            match (ip, port.parse::<u16>().ok()) {
                // Keys travel in SESSION CREATE: only a loopback bridge is carried over.
                (Some(ip), Some(p)) if ip.is_loopback() => {
                    out.sam = Some(std::net::SocketAddr::new(ip, p).to_string());
                }
                _ => out.notes.push(format!(
                    "[sam] address {addr}:{port} is not a loopback address: not carried over \
                     (eepsocks sends its private keys to the SAM bridge; use 127.0.0.1:{port})"
                )),
            }
        }
    }
    let empty = BTreeMap::new();
    let sec = s.get("socksproxy").unwrap_or(&empty);
    if sec.get("enabled").map(String::as_str) == Some("false") {
        out.notes
            .push("[socksproxy] is disabled there; imported anyway".into());
    }
    let l = i2pd_listener(
        "socksproxy",
        sec,
        Some("4447"),
        "transient-proxy",
        &mut out.notes,
    );
    out.listeners.push(l);
    out
}

/// tunnels.conf: every `type = socks` section.
pub fn from_i2pd_tunnels(text: &str) -> Imported {
    let mut out = Imported::default();
    for (name, sec) in ini(text) {
        if sec.get("type").map(String::as_str) != Some("socks") {
            continue;
        }
        if !sec.contains_key("port") {
            out.notes.push(format!("{name}: no port; skipped"));
            continue;
        }
        let l = i2pd_listener(&name, &sec, None, "transient", &mut out.notes);
        out.listeners.push(l);
    }
    out
}

/// Java I2P i2ptunnel.config (or a file of i2ptunnel.config.d): `sockstunnel` tunnels.
pub fn from_java(text: &str) -> Imported {
    let mut out = Imported::default();
    for (n, t) in java_tunnels(text) {
        let ty = t.get("type").map(String::as_str).unwrap_or("");
        if ty != "sockstunnel" && ty != "socksirctunnel" {
            continue;
        }
        let name = t.get("name").cloned().unwrap_or(format!("tunnel{n}"));
        let notes = &mut out.notes;
        if ty == "socksirctunnel" {
            notes.push(format!(
                "{name}: IRC filtering (socksirctunnel) is not available; imported as plain SOCKS"
            ));
        }
        let mut l = toml::Table::new();
        l.insert("name".into(), clean_name(&name).into());
        let iface = t
            .get("interface")
            .map(String::as_str)
            .unwrap_or("127.0.0.1");
        let port = t.get("listenPort").map(String::as_str).unwrap_or("4447");
        if !iface
            .parse::<std::net::IpAddr>()
            .map(|i| i.is_loopback())
            .unwrap_or(false)
        {
            notes.push(format!(
                "{name}: listened on {iface}; eepsocks listens on loopback only"
            ));
        }
        l.insert("listen".into(), format!("127.0.0.1:{port}").into());
        java_keys(&name, &t, &mut l, notes);
        let opts = java_options(&name, &t, notes);
        if !opts.is_empty() {
            l.insert("options".into(), toml::Value::Table(opts));
        }
        out.listeners.push(l);
    }
    out
}

/// The `tunnel.N.key=value` lines, by tunnel number.
fn java_tunnels(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut tunnels: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let Some(rest) = k.trim().strip_prefix("tunnel.") else {
            continue;
        };
        if let Some((n, key)) = rest.split_once('.') {
            tunnels
                .entry(n.to_string())
                .or_default()
                .insert(key.to_string(), v.trim().to_string());
        }
    }
    tunnels
}

/// Where a Java tunnel's keys were: its own file (persistent), the shared clients'
/// destination, or transient.
fn java_keys(
    name: &str,
    t: &BTreeMap<String, String>,
    l: &mut toml::Table,
    notes: &mut Vec<String>,
) {
    let persistent = t.get("option.persistentClientKey").map(String::as_str) == Some("true");
    let shared = t.get("sharedClient").map(String::as_str) != Some("false");
    match (persistent, t.get("privKeyFile")) {
        (true, Some(f)) => {
            l.insert("keys".into(), f.clone().into());
            notes.push(format!(
                "{name}: keys {f}: copy it from the I2P config directory with `eepsocks keys import {f} --name {}`",
                clean_name(name)
            ));
        }
        _ if shared => {
            l.insert("shared".into(), true.into());
            notes.push(format!(
                "{name}: was on Java's shared-clients destination; now shares eepsocks' shared.dat with other shared listeners"
            ));
        }
        _ => {
            l.insert("keys".into(), "transient".into());
        }
    }
}

/// A Java tunnel's `option.*` settings that mean the same to eepsocks; a note for the rest.
fn java_options(name: &str, t: &BTreeMap<String, String>, notes: &mut Vec<String>) -> toml::Table {
    let mut opts = toml::Table::new();
    for (k, v) in t {
        match k.as_str() {
            "type" | "name" | "interface" | "listenPort" | "sharedClient" | "privKeyFile"
            | "startOnLoad" | "description" | "i2cpHost" | "i2cpPort"
            | "option.persistentClientKey" => {}
            "proxyList" | "option.outproxyType" | "option.i2ptunnel.useLocalOutproxy" => {
                notes.push(format!("{name}: {k} = {v} dropped: no outproxy, by design"))
            }
            k if k.starts_with("option.i2ptunnel.socks.proxy.") => {
                notes.push(format!("{name}: {k} dropped: no outproxy, by design"))
            }
            k if k.starts_with("option.proxy.auth.") || k == "option.proxyAuth" => notes.push(format!(
                "{name}: {k}: Java's password digests (user:realm:password) cannot be converted; set [proxy.auth] by hand"
            )),
            k => match k.strip_prefix("option.") {
                Some(o) if passes_through(o) => {
                    opts.insert(o.to_string(), v.clone().into());
                }
                _ => notes.push(format!("{name}: {k} = {v} has no eepsocks equivalent")),
            },
        }
    }
    opts
}

/// Pick the format from the text.
pub fn detect(text: &str) -> Imported {
    if text.lines().any(|l| l.trim_start().starts_with("tunnel.")) {
        from_java(text)
    } else if text
        .lines()
        .any(|l| l.replace(' ', "").contains("type=socks"))
    {
        from_i2pd_tunnels(text)
    } else {
        from_i2pd_conf(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Every import must give a config eepsocks accepts.
    fn valid(i: &Imported) -> Config {
        let c: Config =
            toml::from_str(&i.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", i.to_toml()));
        c.validate().unwrap();
        c
    }

    #[test]
    fn i2pd_conf() {
        let i = detect(
            "log = stdout\n[sam]\nenabled = true\nport = 7777\n[socksproxy]\nenabled = true\naddress = 0.0.0.0\nport = 4450\nkeys = socks.dat\ninbound.length = 2\noutproxy.enabled = true\noutproxy = 127.0.0.1\noutproxyport = 9050\nsignaturetype = 11\n",
        );
        let c = valid(&i);
        assert_eq!(c.sam, "127.0.0.1:7777");
        let l = &c.listeners()[0];
        assert_eq!(l.listen.to_string(), "127.0.0.1:4450");
        assert_eq!(l.keys.as_deref(), Some("socks.dat"));
        assert_eq!(l.options["inbound.length"].as_str(), Some("2"));
        let notes = i.notes.join("\n");
        assert!(notes.contains("loopback only"), "{notes}");
        assert!(notes.contains("outproxy"), "{notes}");
        assert!(notes.contains("signaturetype 11"), "{notes}");
        assert!(notes.contains("keys import socks.dat"), "{notes}");
        // defaults: transient keys, dotted top-level keys
        let i = from_i2pd_conf("socksproxy.port = 4460\n");
        let c = valid(&i);
        assert_eq!(c.listeners()[0].listen.port(), 4460);
        assert_eq!(c.listeners()[0].keys.as_deref(), Some("transient"));
    }

    /// IPv6 loopback comes out as a listen address the config reads back; a SAM bridge
    /// off loopback (private keys in cleartext on the network) is not carried over.
    #[test]
    fn ipv6_listen_and_non_loopback_sam() {
        let i = from_i2pd_conf(
            "[sam]\naddress = 0.0.0.0\nport = 7656\n[socksproxy]\naddress = ::1\nport = 4451\n",
        );
        let c = valid(&i);
        assert_eq!(c.listeners()[0].listen.to_string(), "[::1]:4451");
        assert_eq!(c.sam, Config::default().sam);
        assert!(
            i.notes.join("\n").contains("not a loopback address"),
            "{:?}",
            i.notes
        );
        let i = from_i2pd_conf("[sam]\naddress = ::1\nport = 7657\n");
        assert_eq!(i.sam.as_deref(), Some("[::1]:7657"));
    }

    #[test]
    fn i2pd_tunnels() {
        let i = detect(
            "[irc]\ntype = client\nport = 6668\n\n[mysocks]\ntype = socks\nport = 4455\nkeys = transient\noutproxy = 127.0.0.1\ndestinationport = 9050\ni2cp.leaseSetEncType = 4\n\n[other]\ntype = socks\nport = 4456\nkeys = mine.dat\nmatchtunnels = true\n",
        );
        let c = valid(&i);
        let ls = c.listeners();
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[0].name, "mysocks");
        assert_eq!(ls[0].options["i2cp.leaseSetEncType"].as_str(), Some("4"));
        assert_eq!(ls[1].keys.as_deref(), Some("mine.dat"));
        let notes = i.notes.join("\n");
        assert!(
            notes.contains("matchtunnels = true has no eepsocks equivalent"),
            "{notes}"
        );
        assert!(notes.contains("mysocks: outproxy"), "{notes}");
    }

    #[test]
    fn java() {
        let i = detect(
            "tunnel.0.type=httpclient\ntunnel.0.name=I2P HTTP Proxy\ntunnel.3.type=sockstunnel\ntunnel.3.name=SOCKS 4/4a/5\ntunnel.3.interface=127.0.0.1\ntunnel.3.listenPort=4447\ntunnel.3.sharedClient=false\ntunnel.3.privKeyFile=i2ptunnel3-privKeys.dat\ntunnel.3.option.persistentClientKey=true\ntunnel.3.option.inbound.length=3\ntunnel.3.option.i2cp.leaseSetEncType=4,0\ntunnel.3.proxyList=outproxy.i2p\ntunnel.3.option.proxy.auth.alice.sha256=abcd\ntunnel.4.type=socksirctunnel\ntunnel.4.name=irc\ntunnel.4.listenPort=4448\n",
        );
        let c = valid(&i);
        let ls = c.listeners();
        assert_eq!(ls.len(), 2);
        assert_eq!(ls[0].name, "SOCKS-4-4a-5");
        assert_eq!(ls[0].keys.as_deref(), Some("i2ptunnel3-privKeys.dat"));
        assert_eq!(ls[0].options["i2cp.leaseSetEncType"].as_str(), Some("4,0"));
        assert!(ls[1].shared);
        let notes = i.notes.join("\n");
        assert!(
            notes.contains("proxyList = outproxy.i2p dropped"),
            "{notes}"
        );
        assert!(notes.contains("cannot be converted"), "{notes}");
        assert!(notes.contains("IRC filtering"), "{notes}");
    }
}
