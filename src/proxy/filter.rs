//! Which leak filters a stream gets (docs/filters.md). The rules themselves are in the
//! `eepsocks-leakfilter` crate (sans-IO, fuzzed); `relay` runs them.

use crate::config::FilterMode;
use eepsocks_leakfilter::{http, irc, Filter};

/// Ports where `auto` expects plaintext IRC. 6697 is IRC over TLS: opaque, left alone.
const IRC_PORTS: std::ops::RangeInclusive<u16> = 6667..=6669;
/// The port where `auto` looks for plain HTTP (only if the client's first bytes are a
/// request line; anything else on port 80 passes untouched).
const HTTP_PORT: u16 = 80;

/// The filters of one stream, one per direction; None passes that direction as it is.
#[derive(Default)]
pub struct Filters {
    /// Client → I2P.
    pub up: Option<Box<dyn Filter>>,
    /// I2P → client.
    pub down: Option<Box<dyn Filter>>,
    /// Which rules, for the debug log.
    pub kind: &'static str,
}

impl Filters {
    /// The filters for a stream to `port` on a listener with `mode`.
    pub fn for_stream(mode: FilterMode, port: u16, user_agent: Option<&str>) -> Filters {
        let irc = || Filters {
            up: Some(Box::new(irc::Outbound::new())),
            down: Some(Box::new(irc::Inbound::new())),
            kind: "irc",
        };
        let http = |sniff: bool| {
            let (up, down) = http::Requests::with_responses(http::Options {
                user_agent: user_agent.unwrap_or(http::DEFAULT_USER_AGENT).to_string(),
                sniff,
                forward: false,
            });
            Filters {
                up: Some(Box::new(up)),
                // Responses say nothing about the user; they pass as they are, the first
                // one's status read to know whether a protocol switch happened.
                down: Some(Box::new(down)),
                kind: "http",
            }
        };
        match mode {
            FilterMode::None => Filters::default(),
            FilterMode::Irc => irc(),
            FilterMode::Http => http(false),
            FilterMode::Auto if IRC_PORTS.contains(&port) => irc(),
            FilterMode::Auto if port == HTTP_PORT => http(true),
            FilterMode::Auto => Filters::default(),
        }
    }

    /// The filters of a request forwarded for an `http://` URL, whatever the listener's
    /// mode (`none` too): the request line must be rewritten for the server, and the
    /// connection must carry that one request and nothing after it. The HTTP rules apply
    /// with the listener's User-Agent.
    pub fn forward(user_agent: Option<&str>) -> Filters {
        Filters {
            up: Some(Box::new(http::Requests::new(http::Options {
                user_agent: user_agent.unwrap_or(http::DEFAULT_USER_AGENT).to_string(),
                sniff: false,
                forward: true,
            }))),
            down: None,
            kind: "http-forward",
        }
    }

    pub fn is_none(&self) -> bool {
        self.up.is_none() && self.down.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_by_port() {
        let f = |mode, port| Filters::for_stream(mode, port, None).kind;
        assert_eq!(f(FilterMode::Auto, 6667), "irc");
        assert_eq!(f(FilterMode::Auto, 6669), "irc");
        assert_eq!(f(FilterMode::Auto, 6697), "");
        assert_eq!(f(FilterMode::Auto, 80), "http");
        assert_eq!(f(FilterMode::Auto, 443), "");
        assert_eq!(f(FilterMode::Auto, 8080), "");
        assert_eq!(f(FilterMode::Irc, 443), "irc");
        assert_eq!(f(FilterMode::Http, 8080), "http");
        assert_eq!(f(FilterMode::None, 6667), "");
        assert!(Filters::for_stream(FilterMode::None, 80, None).is_none());
        assert!(Filters::for_stream(FilterMode::Auto, 80, None)
            .down
            .is_some());
    }

    #[test]
    fn forwarding_is_always_filtered() {
        let mut f = Filters::forward(Some("UA"));
        assert_eq!(f.kind, "http-forward");
        assert!(f.down.is_none());
        let mut out = eepsocks_leakfilter::Output::default();
        let up = f.up.as_mut().unwrap();
        up.feed(
            b"GET http://a.i2p/x HTTP/1.1\r\nUser-Agent: curl\r\n\r\nGET http://b.i2p/ HTTP/1.1\r\n",
            &mut out,
        );
        assert_eq!(
            out.forward,
            b"GET /x HTTP/1.1\r\nUser-Agent: UA\r\nConnection: close\r\n\r\n"
        );
    }
}
