//! `echotool serve --proto udp` and `echotool connect --proto udp`: one datagram in, one out,
//! against each other, socat, and test peers that lose and reorder on purpose.

mod common;

use std::net::UdpSocket;
use std::thread;
use std::time::Duration;

use common::*;

fn udp_server(listen: &str) -> Server {
    Server::start(&["--proto", "udp", "-l", listen])
}

#[test]
fn lines_and_pipes_over_ipv4_and_ipv6() {
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let server = udp_server(listen);
        let lines = connect(&["--mode", "lines", server.url()], b"one\ntwo\n");
        assert!(lines.status.success(), "{listen}: {}", lines.stderr);
        assert_eq!(lines.stdout, b"one\ntwo\n");
        let data = random_bytes(200_000, 4);
        let piped = connect(&["--size", "8K", server.url()], &data);
        assert!(piped.status.success(), "{listen}: {}", piped.stderr);
        assert_same_bytes(&piped.stdout, &data);
    }
}

#[test]
fn the_largest_ipv4_datagram_comes_back_exact_and_a_larger_one_is_refused_before_sending() {
    let server = udp_server(":0");
    // 65506 characters and the newline --message adds: 65507 bytes, the IPv4 maximum.
    let biggest = "x".repeat(65_506);
    let out = connect(&["-m", &biggest, server.url()], b"");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.len(), 65_507);
    assert_same_bytes(&out.stdout, format!("{biggest}\n").as_bytes());

    let random = random_bytes(65_507, 5);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket.send_to(&random, server.socket_addr()).unwrap();
    let mut back = vec![0; 70_000];
    let (n, _) = socket.recv_from(&mut back).unwrap();
    assert_same_bytes(&back[..n], &random);

    let too_big = "x".repeat(65_507);
    connect(&["-m", &too_big, server.url()], b"").assert_error(
        1,
        &[
            "65508-byte message is too large for udp",
            "at most 65507 bytes",
        ],
    );
    connect(&["--size", "70000", server.url()], b"data")
        .assert_error(1, &["70000-byte message is too large", "lower --size"]);
}

#[test]
fn socat_talks_to_echotool_and_echotool_to_socat() {
    require("socat");
    let server = udp_server(":0");
    let socat = sh(
        &format!("socat -t 2 - UDP:127.0.0.1:{}", server.port()),
        b"via socat\n",
    );
    assert!(socat.status.success(), "{}", socat.stderr);
    assert_eq!(socat.stdout, b"via socat\n");

    let port = free_udp_port();
    let mut peer = std::process::Command::new("socat");
    peer.arg(format!("UDP-RECVFROM:{port},bind=127.0.0.1,fork"))
        .arg("PIPE");
    let _peer = Running::spawn(peer);
    wait_for_udp_echo(&format!("127.0.0.1:{port}"));
    let url = format!("udp://127.0.0.1:{port}");
    let out = connect(&["--mode", "lines", &url], b"to socat\nand back\n");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, b"to socat\nand back\n");
}

#[test]
fn nothing_listening_is_refused_quickly() {
    let port = free_udp_port();
    let out = connect(&["-m", "anyone?", &format!("udp://127.0.0.1:{port}")], b"");
    out.assert_error(
        1,
        &[
            "could not connect to udp://127.0.0.1:",
            "connection refused",
        ],
    );
    let piped = connect(&[&format!("udp://127.0.0.1:{port}")], b"x\n");
    piped.assert_error(1, &["connection refused"]);
}

#[test]
fn a_silent_peer_times_out_with_the_udp_hint() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}", silent.local_addr().unwrap());
    let out = connect(
        &["--timeout", "300ms", "--retries", "1", "-m", "hello?", &url],
        b"",
    );
    out.assert_error(
        1,
        &[
            "no echo from udp://",
            "within 300 ms",
            "unreliable",
            "is a server listening",
        ],
    );
    // The first try and one retry both arrived.
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0; 16];
    assert_eq!(silent.recv(&mut buf).unwrap(), 7);
    assert_eq!(silent.recv(&mut buf).unwrap(), 7);
}

#[test]
fn pipe_mode_reports_loss_and_reordering_instead_of_gluing() {
    // A peer that drops the 4th datagram and swaps the 6th and 7th.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let url = format!("udp://{}", peer.local_addr().unwrap());
    let lossy = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut held = None;
        for i in 1..=10 {
            let (n, from) = peer.recv_from(&mut buf).expect("datagram");
            match i {
                4 => {}
                6 => held = Some(buf[..n].to_vec()),
                7 => {
                    peer.send_to(&buf[..n], from).unwrap();
                    peer.send_to(&held.take().unwrap(), from).unwrap();
                }
                _ => {
                    peer.send_to(&buf[..n], from).unwrap();
                }
            }
        }
    });
    let input: Vec<u8> = (b'a'..=b'j').flat_map(|c| [c; 10]).collect();
    let out = connect(&["--size", "10", "--timeout", "500ms", &url], &input);
    lossy.join().unwrap();
    out.assert_error(1, &["1 of 10 datagrams", "lost"]);
    assert!(
        out.stderr.contains("datagram #4 (10 bytes) was lost"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("datagram #6 was echoed after #7: reordered"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("#5 was echoed"),
        "#5 was not reordered, #4 was lost: {}",
        out.stderr
    );
    let want: Vec<u8> = input[..30].iter().chain(&input[40..]).copied().collect();
    assert_same_bytes(&out.stdout, &want);
}

#[test]
fn datagrams_from_reflection_ports_are_dropped() {
    let mut cmd = echotool();
    cmd.args(["-v", "serve", "--proto", "udp", "-l", "127.0.0.1:0"]);
    let mut proc = Running::spawn(cmd);
    let addr = proc.listening_addr();
    let echo_port = match UdpSocket::bind("127.0.0.1:7") {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("skipping the port-7 half: cannot bind 127.0.0.1:7 here ({e})");
            return;
        }
    };
    echo_port.send_to(b"loop me", &addr).unwrap();
    proc.wait_for_line("dropped datagram from a reflection port");
    // The same bytes from an ordinary port are echoed, so the drop was the port's doing.
    let ordinary = UdpSocket::bind("127.0.0.1:0").unwrap();
    ordinary.set_read_timeout(Some(PATIENCE)).unwrap();
    ordinary.send_to(b"loop me", &addr).unwrap();
    let mut buf = [0; 16];
    assert_eq!(ordinary.recv(&mut buf).unwrap(), 7);
    // Nothing came back to port 7 (the echo to the ordinary port proves the server has
    // handled both, and it handles datagrams in order on one worker or drops them).
    echo_port.set_nonblocking(true).unwrap();
    assert!(echo_port.recv(&mut buf).is_err(), "port 7 got an echo");
    proc.signal(2);
    let (status, lines) = proc.wait();
    assert!(status.success());
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary "))
        .expect("summary");
    assert!(summary.contains("2 datagrams in, 1 out"), "{summary}");
    assert!(summary.contains("1 dropped"), "{summary}");
}

#[test]
fn sixteen_clients_times_a_thousand_datagrams_add_up() {
    let server = Server::start(&["--proto", "udp", "-l", ":0", "--workers", "4"]);
    let addr = server.socket_addr();
    let clients: Vec<_> = (0..16u64)
        .map(|id| {
            thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(addr).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                let mut buf = [0u8; 2048];
                for seq in 0..1000u64 {
                    let msg = random_bytes(64 + (seq as usize % 900), id << 32 | seq);
                    socket.send(&msg).unwrap();
                    let n = socket.recv(&mut buf).expect("echo within 2 s on loopback");
                    assert_same_bytes(&buf[..n], &msg);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    let bytes: u64 = (0..1000u64).map(|seq| 64 + seq % 900).sum::<u64>() * 16;
    let (status, lines) = server.stop();
    assert!(status.success());
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary "))
        .expect("summary");
    let want =
        format!("16000 datagrams in, 16000 out, {bytes} bytes in, {bytes} bytes out, 0 errors");
    assert!(summary.ends_with(&want), "{summary}\nwant {want}");
}

#[test]
fn a_second_udp_server_on_the_same_port_is_refused() {
    let server = udp_server(":0");
    let mut cmd = echotool();
    cmd.args(["serve", "--proto", "udp", "-l", &server.addr()]);
    run(cmd, b"").assert_error(1, &["cannot listen on udp://", "already in use"]);
}

#[test]
fn rate_limit_drops_the_excess_from_one_source() {
    let server = Server::start(&[
        "--proto",
        "udp",
        "-l",
        ":0",
        "--udp-rate-limit",
        "5",
        "--workers",
        "1",
    ]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.socket_addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for i in 0..20u8 {
        socket.send(&[i]).unwrap();
    }
    let mut echoed = 0;
    let mut buf = [0u8; 4];
    // Bounded: at most 20 answers can come; the read timeout ends the loop after the last.
    for _ in 0..20 {
        if socket.recv(&mut buf).is_err() {
            break;
        }
        echoed += 1;
    }
    assert!((5..=7).contains(&echoed), "echoed {echoed} of 20 at 5/s");
    let (_, lines) = server.stop();
    let summary = lines
        .iter()
        .find(|l| l.starts_with("summary "))
        .expect("summary");
    assert!(
        summary.contains(&format!("{} dropped", 20 - echoed)),
        "{summary}"
    );
}
