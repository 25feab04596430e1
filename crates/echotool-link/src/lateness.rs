//! `Lateness`: how late the forwarder wrote packets out against their schedule, the figure a
//! caller checks a sub-millisecond result against.

use std::time::Duration;

/// How late packets left the link against the time the scheduler gave them: the forwarder's
/// own timing error, in 1 µs buckets up to 10 ms (later ones share the last bucket).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lateness {
    /// Packets per microsecond of lateness.
    buckets: Vec<u64>,
    /// The latest any packet was.
    max: Duration,
    /// Packets recorded.
    count: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
impl Lateness {
    const BUCKETS: usize = 10_000;

    /// Records one packet written `late` after its due time.
    pub(crate) fn record(&mut self, late: Duration) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; Self::BUCKETS];
        }
        let bucket = (late.as_micros() as usize).min(Self::BUCKETS - 1);
        self.buckets[bucket] += 1;
        self.max = self.max.max(late);
        self.count += 1;
    }

    /// Packets recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latest any packet was.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The lateness that a fraction `q` (0..=1) of packets did not exceed, to the microsecond
    /// above; zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        let target = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (micros, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return Duration::from_micros(micros as u64 + 1).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_round_up_to_the_microsecond_and_never_pass_the_latest() {
        let mut late = Lateness::default();
        assert_eq!(late.quantile(0.5), Duration::ZERO);
        for micros in [3, 3, 7, 20_000] {
            late.record(Duration::from_micros(micros) + Duration::from_nanos(400));
        }
        assert_eq!(late.count(), 4);
        assert_eq!(late.quantile(0.5), Duration::from_micros(4));
        assert_eq!(late.quantile(0.75), Duration::from_micros(8));
        // Past 10 ms every packet shares the last bucket; the maximum stays exact.
        assert_eq!(late.quantile(1.0), Duration::from_micros(10_000));
        assert_eq!(late.max(), Duration::from_nanos(20_000_400));
    }
}
