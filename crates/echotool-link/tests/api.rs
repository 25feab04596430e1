//! The API the bench will use: a tokio runtime put into a side by its thread hook, and a link
//! reconfigured between runs without rebuilding anything. Needs root; skips without it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use echotool_link::{LinkOptions, LinkSpec};

#[test]
fn runtime_hook_puts_every_runtime_thread_in_the_side() {
    if !root_or_skip("runtime_hook_puts_every_runtime_thread_in_the_side") {
        return;
    }
    let link = link("delay=2ms", LinkOptions::default());
    let server = link.server().clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(link.server().runtime_hook())
        .enable_all()
        .build()
        .expect("runtime");
    let (addr, inside) = runtime.block_on(async move {
        let task = tokio::spawn(async move {
            let socket = tokio::net::UdpSocket::bind(server.addr(true, 0))
                .await
                .expect("bind in the side");
            (socket, server.contains_current_thread())
        });
        let (socket, inside) = task.await.expect("task");
        let addr = socket.local_addr().expect("address");
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf)).await
            {
                let _ = socket.send_to(&buf[..n], from).await;
            }
        });
        (addr, inside)
    });
    assert!(inside, "a runtime worker was not in the server side");
    let client = udp(link.client(), true);
    let rtts = ping(&client, addr, 5, Duration::from_secs(1));
    assert_eq!(
        rtts.len(),
        5,
        "the runtime's socket did not answer over IPv6"
    );
    assert!(rtts.iter().all(|r| *r >= Duration::from_millis(4)));
    drop(runtime);
}

#[test]
fn reconfigure_changes_the_path_under_open_sockets() {
    if !root_or_skip("reconfigure_changes_the_path_under_open_sockets") {
        return;
    }
    let link = link("delay=2ms", LinkOptions::default());
    let server = udp(link.server(), false);
    let to = server.local_addr().expect("server address");
    let echo = udp_echo(server, Instant::now() + Duration::from_secs(20));
    let client = udp(link.client(), false);
    let before = median(ping(&client, to, 10, Duration::from_secs(1)));
    let slower = LinkSpec::parse("delay=15ms,mtu=1280").expect("spec");
    link.reconfigure(&slower).expect("reconfigure");
    assert_eq!(link.spec().to_string(), "delay=15ms,mtu=1280");
    let after = median(ping(&client, to, 10, Duration::from_secs(1)));
    client.send_to(b"stop", to).expect("stop");
    echo.join().expect("echo");
    eprintln!("rtt before {before:?}, after {after:?}");
    assert!(before >= Duration::from_millis(4) && before < Duration::from_millis(10));
    assert!(after >= Duration::from_millis(30) && after < Duration::from_millis(40));
    let stats = link.stats();
    assert!(stats.lateness.count() >= 40, "{:?}", stats.lateness.count());
}
