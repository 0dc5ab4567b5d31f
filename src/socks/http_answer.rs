//! HTTP answers of the SOCKS port: the response to a CONNECT or forwarded request (a page
//! for browsers), by reply code.

/// The response to a parsed CONNECT: 200 opens the tunnel, anything else ends it. With
/// `page` (the requested host, for a client that accepts text/html) the error is a page.
pub(super) fn reply(minor: u8, code: u8, why: &str, page: Option<&str>) -> Vec<u8> {
    if code == 0x00 {
        // No body: whatever follows belongs to the tunnel.
        return format!("HTTP/1.{minor} 200 Connection established\r\n\r\n").into_bytes();
    }
    let (status, reason) = status(code);
    let line = one_line(why);
    match page {
        None => error_response(minor, status, reason, "", &line),
        Some(host) => {
            let body = error_page(code, status, reason, host, &line);
            // Nothing on the page may load or run anything, whatever it quotes.
            format!(
                "HTTP/1.{minor} {status} {reason}\r\n\
                 Content-Type: text/html; charset=utf-8\r\n\
                 Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
                 X-Content-Type-Options: nosniff\r\n\
                 Cache-Control: no-store\r\n\
                 Content-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }
    }
}

/// `&<>"'` escaped, for text and attribute values alike.
fn escape_html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The headline, the reason in words and what to do, for a failed request's reply code.
fn page_text(code: u8) -> (&'static str, &'static str, &'static str) {
    match code {
        0x02 => (
            "Not an I2P site",
            "This proxy reaches only I2P sites: names ending in .i2p and .b32.i2p \
             addresses. There is no way out to the ordinary internet through it, by design.",
            "If you meant an I2P site, use its .i2p name or its b32 address. If the host \
             above is an IP address, the application looked the name up itself: turn on \
             remote DNS (SOCKS5 with remote DNS, socks5h://, curl --socks5-hostname), or \
             use this proxy's HTTP port for http:// addresses.",
        ),
        0x04 | 0xF0 => (
            "I2P site not found",
            "The name is in no address book, or the router found no current address \
             (LeaseSet) for the site: it may be offline.",
            "Add the name to your address book: eepsocks addressbook add NAME DEST (DEST is \
             the site's base64 destination, from a jump service or its owner), or use the \
             site's b32 address. Check the b32 for typos. A site that was offline may be \
             back in a minute.",
        ),
        0xF6 => (
            "Malformed I2P address",
            "The host is not a valid I2P address.",
            "Check the b32: 52 characters a-z and 2-7 before .b32.i2p (56 or more for an \
             encrypted b33).",
        ),
        0x06 | 0xF7 => (
            "The I2P site did not answer in time",
            "The router could not open a stream to the site within the proxy's timeout.",
            "Tunnels may still be building (a new router needs a few minutes) or the site \
             is offline: try again in a minute.",
        ),
        0x05 => (
            "The I2P site refused the connection",
            "The site is reachable, but nothing accepts connections on that port.",
            "Check the port in the address.",
        ),
        0x07 | 0x08 => (
            "Request not supported",
            "This proxy does not carry this kind of request.",
            "Use http:// addresses, or HTTP CONNECT for https:// addresses.",
        ),
        _ => (
            "The I2P router could not open the stream",
            "The router is not running, not ready yet, or lost its session.",
            "Check the router and the proxy: eepsocks status, eepsocks doctor.",
        ),
    }
}

/// A small self-contained page (no script, no external resource) for a browser.
fn error_page(code: u8, status: u16, reason: &str, host: &str, line: &str) -> String {
    let (headline, why, fix) = page_text(code);
    let host = escape_html(host);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{headline}: {host}</title>\
         <style>body{{font-family:sans-serif;max-width:42em;margin:2em auto;padding:0 1em;\
         line-height:1.4}}code{{background:#eee;padding:0 .2em}}small{{color:#555}}</style>\
         </head><body>\n<h1>{headline}</h1>\n\
         <p id=\"host\">Host: <code>{host}</code></p>\n\
         <p id=\"reason\">{why}</p>\n\
         <p id=\"fix\">{fix}</p>\n\
         <p><small>eepsocks: {status} {reason}: {}</small></p>\n</body></html>\n",
        escape_html(line),
        reason = escape_html(reason),
    )
}

/// HTTP status for a SOCKS5-style reply code (eepsocks' own codes included).
pub(super) fn status(code: u8) -> (u16, &'static str) {
    match code {
        0x00 => (200, "Connection established"),
        0x02 => (403, "Forbidden"),
        0x04 | 0xF0 | 0xF6 => (404, "Not Found"),
        0x06 | 0xF7 => (504, "Gateway Timeout"),
        0x07 | 0x08 => (501, "Not Implemented"),
        _ => (502, "Bad Gateway"),
    }
}

/// `why` as one line of printable ASCII, at most 200 characters: it may quote peer text.
fn one_line(why: &str) -> String {
    let clean: String = why
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .take(200)
        .collect();
    clean.trim().to_string()
}

pub(super) fn error_response(
    minor: u8,
    status: u16,
    reason: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    };
    format!(
        "HTTP/1.{minor} {status} {reason}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         {extra}\r\n\
         {body}",
        body.len()
    )
    .into_bytes()
}
