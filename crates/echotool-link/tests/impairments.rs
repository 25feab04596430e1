//! The link against the textbook, with real sockets in the two namespaces: round trips of
//! twice the delay, round-trip loss of 1-(1-p)², a TCP transfer at the configured rate.
//! Every test needs root and skips with a message without it.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use echotool_link::LinkOptions;

fn rtt_matches_delay(delay_ms: u64, pings: u32) {
    let link = link(&format!("delay={delay_ms}ms"), LinkOptions::default());
    let server = udp(link.server(), false);
    let to = server.local_addr().expect("server address");
    let echo = udp_echo(server, Instant::now() + Duration::from_secs(30));
    let client = udp(link.client(), false);
    // The first exchange may pay for route and neighbour set-up; it is not measured.
    ping(&client, to, 1, Duration::from_secs(1));
    let rtts = ping(&client, to, pings, Duration::from_secs(1));
    client.send_to(b"stop", to).expect("stop the echo");
    echo.join().expect("echo thread");
    assert_eq!(
        rtts.len() as u32,
        pings,
        "pings lost on a link without loss"
    );
    let floor = Duration::from_millis(2 * delay_ms);
    let ceiling = floor.mul_f64(1.1) + Duration::from_micros(500);
    let min = *rtts.iter().min().expect("some pings");
    let p50 = median(rtts);
    eprintln!("delay={delay_ms}ms: rtt min {min:?} p50 {p50:?} (want {floor:?}..{ceiling:?})");
    assert!(min >= floor, "a round trip of {min:?} beat twice the delay");
    assert!(
        p50 <= ceiling,
        "median round trip {p50:?} above {ceiling:?}"
    );
}

#[test]
fn round_trip_is_twice_the_delay_5ms() {
    if root_or_skip("round_trip_is_twice_the_delay_5ms") {
        rtt_matches_delay(5, 200);
    }
}

#[test]
fn round_trip_is_twice_the_delay_20ms() {
    if root_or_skip("round_trip_is_twice_the_delay_20ms") {
        rtt_matches_delay(20, 60);
    }
}

#[test]
fn round_trip_loss_is_one_minus_survival_squared() {
    if !root_or_skip("round_trip_loss_is_one_minus_survival_squared") {
        return;
    }
    let link = link("loss=10%", LinkOptions::default());
    let server = udp(link.server(), false);
    let to = server.local_addr().expect("server address");
    let echo = udp_echo(server, Instant::now() + Duration::from_secs(30));
    let client = udp(link.client(), false);
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let n: u32 = 4000;
    let mut answered = HashSet::new();
    let mut buf = [0u8; 16];
    // Bursts of 100, each drained before the next, so no socket buffer overflows.
    for burst in 0..n / 100 {
        for seq in burst * 100..(burst + 1) * 100 {
            client.send_to(&seq.to_be_bytes(), to).expect("send");
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match client.recv_from(&mut buf) {
                Ok((4, _)) => {
                    answered.insert(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
                }
                Ok(_) => {}
                Err(_) => break, // 100 ms of silence (the RTT is 0.2 ms): the rest is lost
            }
        }
    }
    client.send_to(b"stop", to).expect("stop the echo");
    echo.join().expect("echo thread");
    let lost = f64::from(n - answered.len() as u32) / f64::from(n);
    let expected = 1.0 - 0.9f64 * 0.9;
    let sd = (expected * (1.0 - expected) / f64::from(n)).sqrt();
    let stats = link.stats();
    eprintln!("round-trip loss {lost:.4}, expected {expected:.4} ± {sd:.4}; {stats:?}");
    assert!(
        (lost - expected).abs() < 4.0 * sd,
        "round-trip loss {lost:.4} is not {expected:.4} ± 4 × {sd:.4}"
    );
    let up = stats.up.dropped_loss as f64 / stats.up.packets_in as f64;
    assert!((up - 0.1).abs() < 0.02, "one-way loss {up:.4}");
}

#[test]
fn tcp_transfer_fills_but_never_exceeds_the_rate() {
    if !root_or_skip("tcp_transfer_fills_but_never_exceeds_the_rate") {
        return;
    }
    let rate = 20e6;
    let link = link("rate=20mbit,delay=2ms", LinkOptions::default());
    let listener = tcp_listener(link.server(), false);
    let to = listener.local_addr().expect("listener address");
    let total: usize = 6 << 20; // 2.5 s at 20 Mbit/s
    let sender = {
        let client = link.client().clone();
        std::thread::spawn(move || {
            let mut stream = tcp_connect(&client, to);
            let chunk = vec![0x5au8; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                stream.write_all(&chunk[..n]).expect("send");
                sent += n;
            }
        })
    };
    let (mut stream, _) = listener.accept().expect("accept");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0;
    let mut first: Option<Instant> = None;
    let mut marks = Vec::new();
    while received < total {
        let n = stream.read(&mut buf).expect("receive");
        assert!(n > 0, "connection closed after {received} bytes");
        first.get_or_insert_with(Instant::now);
        received += n;
        marks.push((Instant::now(), received));
    }
    sender.join().expect("sender");
    let start = first.expect("some data");
    let elapsed = marks.last().expect("marks").0 - start;
    let goodput = (received - marks[0].1) as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("goodput {:.2} Mbit/s over {elapsed:?}", goodput / 1e6);
    assert!(
        goodput >= 0.85 * rate,
        "goodput {goodput} below 85 % of {rate}"
    );
    // Over any second, payload never arrived faster than the link's rate of IP bytes. (A
    // second, not less: a read delayed at a window's start would count bytes that arrived
    // before it, and payload is only 3.5 % below the IP rate.)
    let window = Duration::from_secs(1);
    for (i, (at, bytes)) in marks.iter().enumerate() {
        if let Some((later, more)) = marks[i..].iter().find(|(t, _)| *t - *at >= window) {
            let bits = (more - bytes) as f64 * 8.0;
            let secs = (*later - *at).as_secs_f64();
            assert!(
                bits / secs <= rate * 1.01,
                "{} bit/s over {secs} s",
                bits / secs
            );
        }
    }
    let stats = link.stats();
    let ip_rate = stats.up.bytes_delivered as f64 * 8.0 / elapsed.as_secs_f64();
    eprintln!("IP rate up {:.2} Mbit/s", ip_rate / 1e6);
}
