//! Unit tests of the scheduler with a fake clock and seeded randomness: each impairment alone,
//! against the figure it should produce.

use std::time::Duration;

use super::*;
use crate::spec::LinkSpec;

const MS: Nanos = 1_000_000;

fn shaper(spec: &str, seed: u64) -> Shaper {
    let spec = LinkSpec::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    Shaper::new(spec.up, seed)
}

fn packet(len: usize, tag: u32) -> Vec<u8> {
    let mut p = vec![0u8; len.max(4)];
    p[..4].copy_from_slice(&tag.to_be_bytes());
    p
}

fn tag(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[0], p[1], p[2], p[3]])
}

/// Everything delivered, as (due, tag), draining the shaper completely.
fn drain(s: &mut Shaper) -> Vec<(Nanos, u32)> {
    let mut out = Vec::new();
    while let Some((due, p)) = s.pop_due(Nanos::MAX) {
        out.push((due, tag(&p)));
    }
    out
}

#[test]
fn nothing_set_delivers_at_once() {
    let mut s = shaper("none", 1);
    s.offer(7, packet(100, 1)).unwrap();
    assert_eq!(s.next_due(), Some(7));
    assert_eq!(s.pop_due(6), None);
    assert_eq!(s.pop_due(7).map(|(due, _)| due), Some(7));
}

#[test]
fn delay_is_exact() {
    let mut s = shaper("delay=20ms", 1);
    for i in 0..10 {
        s.offer(i * MS, packet(100, i as u32)).unwrap();
    }
    let out = drain(&mut s);
    let want: Vec<_> = (0..10).map(|i| (i * MS + 20 * MS, i as u32)).collect();
    assert_eq!(out, want);
}

#[test]
fn rate_serialises_back_to_back() {
    // 1500 bytes at 12 Mbit/s take exactly 1 ms on the link.
    assert_eq!(transmit_nanos(1500, 12_000_000), MS);
    let mut s = shaper("rate=12mbit,delay=5ms", 1);
    for i in 0..10 {
        s.offer(0, packet(1500, i)).unwrap();
    }
    let dues: Vec<_> = drain(&mut s).into_iter().map(|(d, _)| d).collect();
    let want: Vec<_> = (1..=10).map(|i| i * MS + 5 * MS).collect();
    assert_eq!(dues, want);
    // An idle link starts the next packet when it arrives, not when the last one finished.
    s.offer(100 * MS, packet(1500, 11)).unwrap();
    assert_eq!(s.next_due(), Some(106 * MS));
}

#[test]
fn rate_is_never_exceeded_by_a_flood() {
    let mut s = shaper("rate=20mbit", 3);
    let mut now = 0;
    for i in 0..10_000 {
        s.offer(now, packet(1200, i)).unwrap();
        now += 100_000; // 12000 bytes/ms offered, 2500 bytes/ms allowed
    }
    let out = drain(&mut s);
    let last = out.last().map(|(d, _)| *d).unwrap_or(0);
    let bits = 10_000.0 * 1200.0 * 8.0;
    let rate = bits / (last as f64 / 1e9);
    assert!(rate <= 20e6 && rate > 19.9e6, "{rate}");
}

#[test]
fn queue_drops_tail_by_bytes() {
    // 1 ms per packet; the first goes straight onto the link, two fit the 3000-byte queue.
    let mut s = shaper("rate=12mbit,queue=3000B", 1);
    let fates: Vec<_> = (0..5)
        .map(|i| s.offer(0, packet(1500, i)).map_err(|d| d.reason))
        .collect();
    assert_eq!(
        fates,
        [
            Ok(()),
            Ok(()),
            Ok(()),
            Err(DropReason::Queue),
            Err(DropReason::Queue)
        ]
    );
    // At 1 ms the second packet has started, so one place is free again.
    assert!(s.offer(MS, packet(1500, 5)).is_ok());
    assert_eq!(
        s.offer(MS, packet(1500, 6)).map_err(|d| d.reason).err(),
        Some(DropReason::Queue)
    );
    let stats = s.stats();
    assert_eq!((stats.dropped_queue, stats.packets_in), (3, 7));
}

#[test]
fn mtu_drops_larger_packets() {
    let mut s = shaper("mtu=1280", 1);
    assert!(s.offer(0, packet(1280, 1)).is_ok());
    let dropped = s.offer(0, packet(1281, 2)).unwrap_err();
    assert_eq!(dropped.reason, DropReason::Mtu);
    assert_eq!(tag(&dropped.packet), 2);
    let mut s = shaper("none", 1);
    assert_eq!(
        s.offer(0, packet(1501, 3)).unwrap_err().reason,
        DropReason::Mtu
    );
}

#[test]
fn loss_is_bernoulli() {
    let n = 200_000;
    let mut s = shaper("loss=10%", 42);
    let lost = (0..n)
        .filter(|i| s.offer(0, packet(100, *i)).is_err())
        .count();
    // Binomial(200000, 0.1): sd = 134; allow 5 sd.
    assert!((lost as i64 - 20_000).abs() < 670, "{lost}");
    assert_eq!(s.stats().dropped_loss, lost as u64);
    // No long runs beyond what independence allows: P(run of 10) = 1e-10 per packet.
    let mut s = shaper("loss=10%", 42);
    let mut run = 0;
    for i in 0..n {
        run = if s.offer(0, packet(100, i)).is_err() {
            run + 1
        } else {
            0
        };
        assert!(run < 10);
    }
}

#[test]
fn seed_decides_everything() {
    let fates = |seed| {
        let mut s = shaper("loss=30%,jitter=5ms,delay=10ms,reorder=5%,dup=5%", seed);
        for i in 0..2000 {
            let _ = s.offer(u64::from(i) * MS, packet(100, i));
        }
        drain(&mut s)
    };
    assert_eq!(fates(7), fates(7));
    assert_ne!(fates(7), fates(8));
}

#[test]
fn jitter_spreads_without_reordering() {
    let mut s = shaper("delay=10ms,jitter=2ms", 9);
    for i in 0..5000 {
        s.offer(u64::from(i) * MS, packet(100, i)).unwrap();
    }
    let out = drain(&mut s);
    let tags: Vec<_> = out.iter().map(|(_, t)| *t).collect();
    assert!(tags.windows(2).all(|w| w[0] < w[1]), "jitter reordered");
    let delays: Vec<i64> = out
        .iter()
        .map(|(due, t)| *due as i64 - i64::from(*t) * MS as i64)
        .collect();
    assert!(
        delays
            .iter()
            .all(|d| (8 * MS as i64..=12 * MS as i64).contains(d))
    );
    let mean = delays.iter().sum::<i64>() as f64 / delays.len() as f64;
    // Packets 1 ms apart with ±2 ms jitter: the no-overtaking rule raises the mean a little.
    assert!(mean > 10.0e6 && mean < 11.0e6, "{mean}");
    assert!(delays.iter().any(|d| *d < 9 * MS as i64));
}

#[test]
fn reordered_packets_are_overtaken() {
    let mut s = shaper("delay=5ms,reorder=10%", 5);
    let gap = 100_000; // 0.1 ms apart: ten packets pass a held one
    for i in 0..1000 {
        s.offer(u64::from(i) * gap, packet(100, i)).unwrap();
    }
    let held = s.stats().reordered;
    assert!((60..=140).contains(&held), "{held}");
    let out = drain(&mut s);
    assert_eq!(out.len(), 1000);
    let hold = REORDER_HOLD.as_nanos() as u64;
    let late = out
        .iter()
        .filter(|(due, t)| *due == u64::from(*t) * gap + 5 * MS + hold)
        .count();
    assert_eq!(late as u64, held);
    let inversions = out.windows(2).filter(|w| w[0].1 > w[1].1).count();
    assert!(inversions > 0 && inversions as u64 <= held);
}

#[test]
fn duplicates_follow_their_original() {
    let mut s = shaper("dup=50%,rate=12mbit", 11);
    for i in 0..100 {
        s.offer(u64::from(i) * 10 * MS, packet(1500, i)).unwrap();
    }
    let stats = s.stats();
    let out = drain(&mut s);
    assert!(stats.duplicated > 30 && stats.duplicated < 70);
    assert_eq!(out.len() as u64, 100 + stats.duplicated);
    // A copy takes its own 1 ms on the link right behind the original.
    for w in out.windows(2).filter(|w| w[0].1 == w[1].1) {
        assert_eq!(w[1].0 - w[0].0, MS);
    }
    let stats = s.stats();
    assert_eq!(stats.delivered, 100 + stats.duplicated);
}

#[test]
fn reconfigure_applies_to_later_packets_only() {
    let mut s = shaper("delay=20ms", 1);
    s.offer(0, packet(100, 1)).unwrap();
    let spec = LinkSpec::parse("delay=1ms").unwrap();
    s.reconfigure(spec.up);
    s.offer(0, packet(100, 2)).unwrap();
    // The link stays first-in first-out: the faster packet waits behind the slower one.
    assert_eq!(drain(&mut s), [(20 * MS, 1), (20 * MS, 2)]);
    s.offer(30 * MS, packet(100, 3)).unwrap();
    assert_eq!(drain(&mut s), [(31 * MS, 3)]);
    assert_eq!(s.impairments().delay, Duration::from_millis(1));
}

#[test]
fn counters_add_up() {
    let mut s = shaper("loss=5%,dup=5%,rate=10mbit,queue=20KB,mtu=1400", 13);
    for i in 0..3000 {
        let len = if i % 100 == 0 { 1450 } else { 1000 };
        let _ = s.offer(u64::from(i) * 500_000, packet(len, i));
    }
    drain(&mut s);
    let st = s.stats();
    assert_eq!(st.packets_in, 3000);
    assert_eq!(st.dropped_mtu, 30);
    assert!(st.dropped_queue > 0);
    assert_eq!(st.packets_in + st.duplicated, st.delivered + st.dropped());
}
