//! What applications say about their users, for the leak-filter tests: an IRC client's
//! session and a browser's request, and what each must look like after the filter.

/// Sent by the IRC "server" to each caller: a welcome, a CTCP VERSION request the client
/// must never see (it would answer with its name and version), and an ACTION that passes.
pub const IRC_SERVER_GREETING: &[u8] = b":irc.test 001 me :Welcome\r\n\
:bob!b@b32 PRIVMSG me :\x01VERSION\x01\r\n\
:bob!b@b32 PRIVMSG me :\x01ACTION waves\x01\r\n\
:bob!b@b32 PRIVMSG me :hello\r\n";

/// An IRC client's session: its host name in USER, a CTCP VERSION reply, a DCC offer
/// naming its IP, an ACTION, a plain message and a QUIT naming its version.
pub const IRC_CLIENT_SESSION: &[u8] = b"NICK me\r\n\
USER me laptop.home.lan irc.test :Me Myself\r\n\
JOIN #i2p\r\n\
PRIVMSG bob :\x01VERSION\x01\r\n\
NOTICE bob :\x01VERSION HexChat 2.16.1 / Linux 6.1\x01\r\n\
PRIVMSG bob :\x01DCC SEND notes.txt 3232235777 5000 1024\x01\r\n\
PRIVMSG bob :\x01ACTION waves back\x01\r\n\
PRIVMSG bob :hello there\r\n\
QUIT :HexChat 2.16.1 on Linux\r\n";

/// A request as Firefox 128 sends it.
pub const FIREFOX_REQUEST: &[u8] = b"GET /page HTTP/1.1\r\n\
Host: web.i2p\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Referer: http://other.i2p/private/page\r\n\
DNT: 1\r\n\
Sec-GPC: 1\r\n\
Connection: keep-alive\r\n\
Cookie: session=abc\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: none\r\n\
Priority: u=0, i\r\n\
\r\n";

/// FIREFOX_REQUEST after the HTTP filter: the same headers in the same order, less the
/// ones that say where the user came from or what language they speak, and the
/// User-Agent every I2P HTTP proxy sends.
pub const FIREFOX_SANITIZED: &[u8] = b"GET /page HTTP/1.1\r\n\
Host: web.i2p\r\n\
User-Agent: MYOB/6.66 (AN/ON)\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\
Cookie: session=abc\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: none\r\n\
Priority: u=0, i\r\n\
\r\n";

/// Checks what an IRC server received from IRC_CLIENT_SESSION through the filter.
pub fn assert_irc_filtered(got: &[u8]) {
    let text = String::from_utf8_lossy(got);
    for leak in ["laptop.home.lan", "VERSION", "HexChat", "DCC", "3232235777"] {
        assert!(
            !text.contains(leak),
            "{leak:?} reached the server:\n{text:?}"
        );
    }
    for kept in [
        "NICK me\r\n",
        "JOIN #i2p\r\n",
        "PRIVMSG bob :\x01ACTION waves back\x01\r\n",
        "PRIVMSG bob :hello there\r\n",
        "QUIT :",
        "USER me ",
    ] {
        assert!(
            text.contains(kept),
            "{kept:?} did not reach the server:\n{text:?}"
        );
    }
}

/// Checks what an IRC client received from IRC_SERVER_GREETING through the filter.
pub fn assert_irc_greeting_filtered(got: &[u8]) {
    let text = String::from_utf8_lossy(got);
    assert!(
        !text.contains("\x01VERSION"),
        "CTCP request reached the client:\n{text:?}"
    );
    for kept in [
        ":irc.test 001 me :Welcome\r\n",
        ":bob!b@b32 PRIVMSG me :\x01ACTION waves\x01\r\n",
        ":bob!b@b32 PRIVMSG me :hello\r\n",
    ] {
        assert!(
            text.contains(kept),
            "{kept:?} did not reach the client:\n{text:?}"
        );
    }
    // The DCC offer was dropped with a word to the client.
    assert!(
        text.contains("DCC"),
        "no notice about the dropped DCC offer:\n{text:?}"
    );
}
