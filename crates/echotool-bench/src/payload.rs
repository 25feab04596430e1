//! Bench payloads: a sequence number in the first eight bytes (little endian) and a fixed
//! pattern after it that covers every byte value, so any alteration, loss, duplication or
//! reordering of echoed bytes is caught by comparing with what was sent.

/// Bytes of a payload taken by the sequence number.
pub const SEQ_BYTES: usize = 8;

/// Builds and checks payloads of one size.
#[derive(Clone, Debug)]
pub struct Payload {
    template: Vec<u8>,
}

impl Payload {
    /// Payloads of `size` bytes. Below eight bytes there is no room for the sequence number;
    /// such payloads are checked against the pattern alone.
    pub fn new(size: usize) -> Self {
        let template = (0..size).map(|i| (i.wrapping_mul(31) + 7) as u8).collect();
        Payload { template }
    }

    /// The payload size.
    pub fn len(&self) -> usize {
        self.template.len()
    }

    /// Whether payloads are empty (never, for a benchmark).
    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Writes payload number `seq` into `buf` (which must be [`Payload::len`] long).
    pub fn fill(&self, seq: u64, buf: &mut [u8]) {
        buf.copy_from_slice(&self.template);
        stamp(seq, buf);
    }

    /// A fresh buffer holding payload number `seq`.
    pub fn make(&self, seq: u64) -> Vec<u8> {
        let mut buf = self.template.clone();
        stamp(seq, &mut buf);
        buf
    }

    /// Whether `echo` is exactly payload number `seq`.
    pub fn matches(&self, seq: u64, echo: &[u8]) -> bool {
        if echo.len() != self.template.len() {
            return false;
        }
        let head = SEQ_BYTES.min(echo.len());
        let stamp = seq.to_le_bytes();
        echo[..head] == stamp[..head] && echo[head..] == self.template[head..]
    }

    /// The sequence number a datagram claims to carry, if it is long enough to carry one.
    pub fn seq_of(echo: &[u8]) -> Option<u64> {
        let head: [u8; SEQ_BYTES] = echo.get(..SEQ_BYTES)?.try_into().ok()?;
        Some(u64::from_le_bytes(head))
    }
}

fn stamp(seq: u64, buf: &mut [u8]) {
    let head = SEQ_BYTES.min(buf.len());
    buf[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_any_change() {
        let p = Payload::new(64);
        let good = p.make(42);
        assert!(p.matches(42, &good));
        assert!(!p.matches(43, &good), "another message");
        let mut upper = good.clone();
        upper.make_ascii_uppercase();
        assert!(
            !p.matches(42, &upper),
            "the pattern holds lowercase letters"
        );
        assert!(!p.matches(42, &good[..63]), "short");
        assert_eq!(Payload::seq_of(&good), Some(42));
        let tiny = Payload::new(3);
        assert!(tiny.matches(7, &tiny.make(7)));
    }
}
