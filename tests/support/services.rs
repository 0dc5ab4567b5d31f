//! Services published inside the test network: a TCP echo and a small HTTP server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

pub const HTTP_BODY: &str = "hello from an eepsite on the offline test network\n";

/// Echo everything until the peer half-closes, then close (so half-close is observable).
pub fn spawn_echo(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || echo(s));
        }
    });
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// Answers every request with HTTP_BODY (HTTP/1.0, then close).
pub fn spawn_http(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || http(s));
        }
    });
}

fn http(mut s: TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let resp = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        HTTP_BODY.len(),
        HTTP_BODY
    );
    let _ = s.write_all(resp.as_bytes());
}
