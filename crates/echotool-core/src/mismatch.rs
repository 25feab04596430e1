//! What came back when a reply is not an echo: the bytes shown safely, and the usual reasons
//! recognised (a TLS, HTTP or SSH server on the other end, a filter that changed the case) with
//! the fix.
//!
//! A client that calls anything an echo is a broken instrument: a web server that answers
//! `HTTP/1.1 400` or a TLS server that sends an alert would otherwise "echo" fine.

use std::fmt::Write as _;

/// How many bytes of a reply an error message shows.
const SHOWN: usize = 48;

/// The verdict on a reply that differs from what was sent, as one sentence for `error: ...`.
///
/// `expected` is what should have come back from the first differing byte on, `got` what came
/// instead (from the same place), and `offset` where in the conversation that is.
pub fn not_an_echo(url: &str, expected: &[u8], got: &[u8], offset: u64) -> String {
    let mut text = format!(
        "the reply from {url} is not an echo of what was sent: at byte {offset} it sent back {} \
         where {} was sent",
        quoted(got),
        quoted(expected)
    );
    if let Some(cause) = recognise(expected, got) {
        let _ = write!(text, "; {cause}");
    }
    text
}

/// A reason for a reply that is not an echo, when the reply looks like something well known.
/// `sent` and `got` start at the same offset (the first differing byte may be anywhere in
/// them, or at 0).
pub fn recognise(sent: &[u8], got: &[u8]) -> Option<&'static str> {
    let starts = |prefix: &[u8]| got.starts_with(prefix);
    if got.len() >= 3 && (0x14..=0x18).contains(&got[0]) && got[1] == 0x03 && got[2] <= 0x04 {
        return Some("the server speaks TLS: use --proto tls or a tls:// URL");
    }
    if starts(b"HTTP/") {
        return Some("the server speaks HTTP: it is a web server, not an echo server");
    }
    if starts(b"SSH-") {
        return Some("the server is an SSH server, not an echo server");
    }
    if starts(b"220 ") || starts(b"220-") || starts(b"+OK") || starts(b"* OK") {
        return Some(
            "the server greets with a banner (SMTP, FTP, POP3 or IMAP?): it is not an echo server",
        );
    }
    if starts(b"-ERR") || starts(b"-DENIED") || starts(b"-NOAUTH") {
        return Some("the server speaks the Redis protocol, not echo");
    }
    let n = sent.len().min(got.len());
    if n > 0 && sent[..n].eq_ignore_ascii_case(&got[..n]) {
        return Some(
            "the server changed the letters' case: it transforms what it gets (a filter such as \
             `tr a-z A-Z`?) instead of echoing it",
        );
    }
    None
}

/// `"HTTP/1.1 400 Bad Request\r\n..."` (48 bytes at most, escaped, with the total length when
/// cut short).
pub fn quoted(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN)];
    let mut text = String::from("\"");
    text.extend(shown.escape_ascii().map(char::from));
    text.push('"');
    if bytes.len() > SHOWN {
        let _ = write!(text, "... ({} bytes)", bytes.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_usual_suspects() {
        let sent = b"hello\n";
        let tls_alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32];
        for (got, want) in [
            (&tls_alert[..], "speaks TLS: use --proto tls"),
            (b"HTTP/1.1 400 Bad Request\r\n", "speaks HTTP"),
            (b"SSH-2.0-OpenSSH_9.2\r\n", "SSH server"),
            (b"220 mail.example ESMTP\r\n", "banner"),
            (b"-ERR unknown command\r\n", "Redis"),
            (b"HELLO\n", "letters' case"),
        ] {
            let cause = recognise(sent, got).unwrap_or_default();
            assert!(cause.contains(want), "{got:?}: {cause}");
        }
        assert_eq!(recognise(sent, b"goodbye"), None);
    }

    #[test]
    fn messages_quote_safely_and_say_where() {
        let text = not_an_echo("tcp://h:1", b"hi\n", b"\x15\x03\x03\x00\x02\x02\x32", 0);
        assert!(
            text.starts_with("the reply from tcp://h:1 is not an echo of what was sent: at byte 0 it sent back \"\\x15\\x03\\x03"),
            "{text}"
        );
        assert!(text.contains("where \"hi\\n\" was sent"), "{text}");
        assert!(text.ends_with("use --proto tls or a tls:// URL"), "{text}");
        let long = quoted(&[b'a'; 100]);
        assert!(long.ends_with("\"... (100 bytes)"), "{long}");
    }
}
