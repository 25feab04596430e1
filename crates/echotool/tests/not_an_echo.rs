//! `echotool connect` compares every echo with what it sent, byte for byte, in every mode and
//! over every protocol: servers that answer something else (a web server, a TLS server spoken
//! to in plaintext, an SSH banner, a filter that changes the case) fail the session with what
//! came back and why; duplicated and late datagrams are told apart from lost ones.

mod common;

use std::net::UdpSocket;
use std::thread;
use std::time::Duration;

use common::*;

/// A socat server on loopback that runs the shell `script` for each connection (from a file,
/// since socat's address syntax would take the script's backslashes for its own).
fn socat_system(script: &str) -> (Running, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "echotool-peer-{}-{}.sh",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, script).unwrap();
    tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            format!("EXEC:sh {}", path.display()),
        ]
    })
}

#[test]
fn a_web_server_is_not_an_echo() {
    let (_peer, port) = socat_system(
        r#"head -c 1 >/dev/null; printf 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'"#,
    );
    let out = connect(&["-m", "hello", &format!("127.0.0.1:{port}")], b"");
    out.assert_error(
        1,
        &[
            "is not an echo of what was sent",
            "\"HTTP/1.1 400 Bad Request\\r\\n",
            "where \"hello\\n\" was sent",
            "speaks HTTP",
        ],
    );
    assert!(out.stdout.is_empty(), "nothing unverified is shown");
}

#[test]
fn a_tls_server_spoken_to_in_plaintext_is_named() {
    let server = Server::start(&["--proto", "tls", "-l", "127.0.0.1:0"]);
    let out = connect(&["--proto", "tcp", "-m", "hello", &server.addr()], b"");
    out.assert_error(
        1,
        &[
            "is not an echo of what was sent",
            "the server speaks TLS: use --proto tls or a tls:// URL",
        ],
    );
}

#[test]
fn an_ssh_banner_is_named_in_lines_and_pipe_mode() {
    let (_peer, port) = socat_system(r#"printf 'SSH-2.0-OpenSSH_9.2\r\n'; cat"#);
    for mode in ["lines", "pipe"] {
        let out = connect(&["--mode", mode, &format!("127.0.0.1:{port}")], b"hi\n");
        out.assert_error(1, &["\"SSH-2.0-OpenSSH_9.2\\r\\n", "an SSH server"]);
    }
}

#[test]
fn a_filter_that_changes_the_case_fails_pipe_mode_and_shows_only_verified_bytes() {
    let (_peer, port) = tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:tr a-z A-Z".into(),
        ]
    });
    let out = connect(
        &["--mode", "pipe", &format!("127.0.0.1:{port}")],
        b"123 abc\n",
    );
    out.assert_error(1, &["at byte 4 it sent back \"ABC\\n\"", "letters' case"]);
    assert_eq!(out.stdout, b"123 ", "only the bytes that came back right");
}

#[test]
fn bytes_after_the_echo_are_not_an_echo() {
    let (_peer, port) = socat_system("cat; printf trailer");
    let out = connect(&["--mode", "pipe", &format!("127.0.0.1:{port}")], b"data\n");
    out.assert_error(1, &["at byte 5 it sent back \"trailer\""]);
    assert_eq!(out.stdout, b"data\n");
    let out = connect(
        &["--mode", "lines", &format!("127.0.0.1:{port}")],
        b"data\n",
    );
    out.assert_error(1, &["at byte 5 it sent back \"trailer\""]);
}

/// A UDP peer on loopback that answers each of `count` datagrams with `answer(i, datagram)`,
/// a list of (delay, payload) replies.
fn udp_peer(
    count: usize,
    answer: impl Fn(usize, &[u8]) -> Vec<(Duration, Vec<u8>)> + Send + 'static,
) -> (String, thread::JoinHandle<()>) {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let url = format!("udp://{}", peer.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for i in 1..=count {
            let Ok((n, from)) = peer.recv_from(&mut buf) else {
                return;
            };
            for (delay, reply) in answer(i, &buf[..n]) {
                let peer = peer.try_clone().unwrap();
                thread::spawn(move || {
                    thread::sleep(delay);
                    let _ = peer.send_to(&reply, from);
                });
            }
        }
    });
    (url, handle)
}

#[test]
fn duplicated_datagrams_are_duplicates_not_gaps() {
    let (url, peer) = udp_peer(10, |_, d| {
        vec![(Duration::ZERO, d.to_vec()), (Duration::ZERO, d.to_vec())]
    });
    let input: Vec<u8> = (b'a'..=b'j').flat_map(|c| [c; 10]).collect();
    let out = connect(&["--size", "10", &url], &input);
    peer.join().unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert_same_bytes(&out.stdout, &input);
    assert!(out.stderr.contains("came twice"), "{}", out.stderr);
    assert!(!out.stderr.contains("gaps"), "{}", out.stderr);
}

#[test]
fn a_late_datagram_is_late_and_its_loss_still_counts() {
    // The third datagram's echo comes 600 ms late; the client gives up after 300 ms. The fourth
    // datagram is only typed a second later, so the late echo arrives while the session is on.
    let (url, peer) = udp_peer(4, |i, d| {
        let delay = if i == 3 { 600 } else { 0 };
        vec![(Duration::from_millis(delay), d.to_vec())]
    });
    let script = format!(
        "{{ printf aaaaaaaaaabbbbbbbbbbcccccccccc; sleep 1; printf dddddddddd; }} | \
         '{}' connect --size 10 --timeout 300ms {url}",
        env!("CARGO_BIN_EXE_echotool")
    );
    let out = sh(&script, b"");
    peer.join().unwrap();
    out.assert_error(
        1,
        &[
            "1 of 4 datagrams",
            "1 of them came back later: late, not lost",
        ],
    );
    assert!(
        out.stderr
            .contains("the echo of datagram #3 came after it was counted lost"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, b"aaaaaaaaaabbbbbbbbbbdddddddddd");
}

#[test]
fn a_datagram_reply_that_is_not_an_echo_fails_at_once() {
    let (url, peer) = udp_peer(1, |_, _| vec![(Duration::ZERO, b"nope\n".to_vec())]);
    let out = connect(&["--mode", "lines", "--timeout", "5s", &url], b"hello\n");
    peer.join().unwrap();
    out.assert_error(
        1,
        &[
            "is not an echo of what was sent",
            "it sent back \"nope\\n\"",
        ],
    );
}
