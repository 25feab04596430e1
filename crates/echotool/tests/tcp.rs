//! `echotool serve` and `echotool connect` over TCP, as the README shows them, against each
//! other and against socat and nc.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use common::*;

#[test]
fn serve_with_no_flags_listens_on_loopback_5555() {
    let server = Server::start(&[]);
    assert_eq!(server.url(), "tcp://127.0.0.1:5555");
    let out = connect(&["--message", "hello"], b"");
    assert_eq!(out.stdout, b"hello\n", "stderr: {}", out.stderr);
}

#[test]
fn pipe_mode_over_ipv4_prints_exactly_what_was_sent() {
    let server = Server::start(&["-l", "127.0.0.1:0"]);
    let out = connect(&[&server.addr()], b"a\nb\n");
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"a\nb\n");
}

#[test]
fn line_mode_over_ipv6_echoes_each_line() {
    let server = Server::start(&["--proto", "tcp6", "-l", "[::1]:0"]);
    assert!(
        server.url().starts_with("tcp6://[::1]:"),
        "{}",
        server.url()
    );
    let out = connect(
        &["--proto", "tcp6", "--mode", "lines", &server.addr()],
        b"one\ntwo\nthree",
    );
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"one\ntwo\nthree");
}

#[test]
fn one_mebibyte_of_random_bytes_comes_back_exact_over_ipv4_and_ipv6() {
    let data = random_bytes(1 << 20, 1);
    for (proto, listen) in [("tcp", "127.0.0.1:0"), ("tcp", "[::1]:0"), ("tcp4", ":0")] {
        let server = Server::start(&["--proto", proto, "-l", listen]);
        let out = connect(&[server.url()], &data);
        assert!(out.status.success(), "{proto} {listen}: {}", out.stderr);
        assert_same_bytes(&out.stdout, &data);
    }
}

#[test]
fn line_mode_is_binary_safe() {
    let server = Server::start(&["-l", ":0"]);
    let data: Vec<u8> = (0..=255u8).chain([b'\n', 0, 0, b'\r', b'\n']).collect();
    let out = connect(&["--mode", "lines", &server.addr()], &data);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_same_bytes(&out.stdout, &data);
}

#[test]
fn message_and_count_send_a_scripted_message() {
    let server = Server::start(&["-l", ":0"]);
    let out = connect(&["-m", "ping", "-c", "3", &server.addr()], b"ignored");
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, b"ping\nping\nping\n");
}

#[test]
fn tcp6_with_unspecified_address_takes_only_ipv6() {
    let server = Server::start(&["--proto", "tcp6", "-l", "[::]:0"]);
    let port = server.port();
    let v6 = connect(&["-m", "six", &format!("[::1]:{port}")], b"");
    assert_eq!(v6.stdout, b"six\n", "stderr: {}", v6.stderr);
    // IPV6_V6ONLY: the IPv4 loopback on the same port is not this server.
    let v4 = connect(&["-m", "four", &format!("127.0.0.1:{port}")], b"");
    v4.assert_error(1, &["connection refused"]);
}

#[test]
fn socat_and_nc_talk_to_echotool_serve() {
    require("socat");
    require("nc");
    let server = Server::start(&["-l", ":0"]);
    let port = server.port();
    let data = random_bytes(256 * 1024, 2);
    let socat = sh(&format!("socat -t 10 - TCP:127.0.0.1:{port}"), &data);
    assert!(socat.status.success(), "socat: {}", socat.stderr);
    assert_same_bytes(&socat.stdout, &data);
    // OpenBSD nc: -N shuts the socket down on end of input, then reads the rest of the echo.
    let nc = sh(&format!("nc -N 127.0.0.1 {port}"), b"hello from nc\n");
    assert!(nc.status.success(), "nc: {}", nc.stderr);
    assert_eq!(nc.stdout, b"hello from nc\n");
}

#[test]
fn echotool_connect_talks_to_socat() {
    let (_socat, port) = tcp_peer("socat", |port| {
        vec![
            format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"),
            "PIPE".into(),
        ]
    });
    let data = random_bytes(1 << 20, 3);
    let out = connect(&[&format!("127.0.0.1:{port}")], &data);
    assert!(out.status.success(), "stderr: {}", out.stderr);
    assert_same_bytes(&out.stdout, &data);
    let lines = connect(
        &["--mode", "lines", &format!("127.0.0.1:{port}")],
        b"x\ny\n",
    );
    assert_eq!(lines.stdout, b"x\ny\n", "stderr: {}", lines.stderr);
}

#[test]
fn two_hundred_concurrent_clients_get_every_byte_back() {
    let server = Server::start(&["-l", ":0"]);
    let addr = server.socket_addr();
    let clients: Vec<_> = (0..200u32)
        .map(|id| {
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                stream.set_nodelay(true).unwrap();
                for seq in 0..100u32 {
                    let len = 1 + ((id * 7919 + seq * 104_729) % 2000) as usize;
                    let msg = random_bytes(len, u64::from(id) << 32 | u64::from(seq));
                    stream.write_all(&msg).expect("write");
                    let mut back = vec![0; len];
                    stream.read_exact(&mut back).expect("read echo");
                    assert_same_bytes(&back, &msg);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary "))
        .expect("summary line");
    assert!(summary.contains("200 connections"), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
}

#[test]
fn a_silent_server_gives_a_timeout_error() {
    // Accepts, never echoes: the client must give up after --timeout, not hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = connect(&["--timeout", "300ms", "-m", "anyone?", &addr], b"");
    out.assert_error(1, &["no echo from tcp://", "within 300 ms"]);
    drop(silent);
}

#[test]
fn interrupt_stops_the_server_with_a_summary_and_status_zero() {
    let server = Server::start(&["-l", ":0"]);
    let out = connect(&["-m", "bye", &server.addr()], b"");
    assert_eq!(out.stdout, b"bye\n");
    let url = server.url().to_string();
    let (status, lines) = server.stop();
    assert!(status.success(), "{lines:?}");
    let want = format!("summary {url}: 1 connection, 1 message, 4 bytes in, 4 bytes out, 0 errors");
    assert!(lines.contains(&want), "{lines:#?}");
}

#[test]
fn a_signal_right_after_the_listening_line_still_gets_a_summary() {
    // The handlers exist before the line is printed, so a script that stops the server the
    // moment it is up gets the orderly shutdown, not the default action of the signal.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let server = Server::start(&["-l", ":0"]);
        server.proc.signal(signal);
        let (status, lines) = server.proc.wait();
        assert!(status.success(), "{lines:?}");
        assert!(
            lines.iter().any(|l| l.starts_with("summary tcp://")),
            "{lines:#?}"
        );
    }
}
