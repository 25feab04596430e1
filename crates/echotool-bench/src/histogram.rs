//! Latency histograms as the JSON carries them: HdrHistogram's V2 compressed encoding
//! (zlib-deflated V2, cookie 0x1c849304), in standard base64. Any HdrHistogram library
//! decodes it (Java's `decodeFromCompressedByteBuffer`, Go's `hdrhistogram.Decode`, Python's
//! `HdrHistogram.decode`, Rust's `V2DeflateSerializer`'s counterpart), which is what lets
//! reports from many load generators be merged exactly: histograms add, percentiles do not.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::BenchError;

/// The histogram, V2-deflate encoded, in base64.
pub fn encode(histogram: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail; an empty string would decode as an error, not as data.
    match V2DeflateSerializer::new().serialize(histogram, &mut bytes) {
        Ok(_) => STANDARD.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Decodes what [`encode`] (or any HdrHistogram library's compressed V2 encoding in base64)
/// wrote; `what` names the histogram in errors.
pub fn decode(text: &str, what: &str) -> Result<Histogram<u64>, BenchError> {
    let invalid = |why: String| {
        BenchError::Invalid(format!(
            "{what}: the histogram is not HdrHistogram V2 compressed base64 ({why})"
        ))
    };
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| invalid(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| invalid(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value_and_count() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in [1u64, 17, 1_000, 54_321, 9_999_999, 42_000_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        let back = decode(&encode(&h), "test").unwrap();
        assert_eq!(back, h);
        assert_eq!(
            (back.len(), back.min(), back.max()),
            (h.len(), h.min(), h.max())
        );
        let err = decode("not base64!", "row 3").unwrap_err().to_string();
        assert!(
            err.starts_with("row 3: the histogram is not HdrHistogram"),
            "{err}"
        );
    }
}
