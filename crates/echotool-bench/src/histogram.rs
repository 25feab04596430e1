//! Latency histograms as the JSON carries them: HdrHistogram's V2 compressed encoding
//! (zlib-deflated V2, cookie 0x1c849304), in standard base64. Any HdrHistogram library
//! decodes it (Java's `decodeFromCompressedByteBuffer`, Go's `hdrhistogram.Decode`, Python's
//! `HdrHistogram.decode`, Rust's `V2DeflateSerializer`'s counterpart), which is what lets
//! reports from many load generators be merged exactly: histograms add, percentiles do not.
//!
//! A report is read from a file anyone may have edited, and the V2 header says how much to
//! allocate: a 40-byte histogram could ask hdrhistogram for a 4 GiB payload buffer, or 5
//! significant digits over the whole 64-bit range (48 MiB of counts). [`decode`] therefore
//! inflates the header itself and refuses a histogram finer than [`MAX_DIGITS`] or whose payload
//! is larger than such a histogram's can be or than the data present, before hdrhistogram
//! allocates anything: under 30 MiB per histogram (counts, payload and hdrhistogram's copy of
//! it), whatever the file says.

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::read::ZlibDecoder;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::BenchError;

/// The cookie of a V2 histogram, and of a deflated one (HdrHistogram's, with word size 0x10).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Bytes of the V2 header: cookie, payload length, normalizing offset, significant digits,
/// lowest and highest trackable value, and the integer-to-double ratio.
const V2_HEADER: usize = 40;

/// The most significant digits a histogram read may have: echotool writes 3, and 4 keeps the
/// counts of any range within a million (8 MiB).
pub const MAX_DIGITS: u32 = 4;

/// The most counts a histogram of [`MAX_DIGITS`] digits has (64 buckets of half of 2^15
/// sub-buckets), and the longest payload it can have: a varint of at most 9 bytes each.
const MAX_COUNTS: usize = 64 << 14;
const MAX_PAYLOAD: usize = 9 * MAX_COUNTS;

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
    let v2 = v2_bytes(&bytes).map_err(invalid)?;
    Deserializer::new()
        .deserialize(&mut v2.as_slice())
        .map_err(|e| invalid(format!("{e:?}")))
}

/// The histogram as plain V2 (header and payload), inflated if it came deflated, once its
/// header is found sound.
fn v2_bytes(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let mut reader: Box<dyn Read + '_> = match word(bytes, 0) {
        Some(V2_COOKIE) => Box::new(bytes),
        Some(V2_COMPRESSED_COOKIE) => {
            let length = word(bytes, 4).ok_or("no length after the cookie")?;
            let deflated = bytes
                .get(8..8 + length as usize)
                .ok_or("shorter than its length says")?;
            Box::new(ZlibDecoder::new(deflated))
        }
        _ => return Err("not an HdrHistogram V2 cookie".into()),
    };
    let mut v2 = vec![0; V2_HEADER];
    reader
        .read_exact(&mut v2)
        .map_err(|e| format!("no V2 header: {e}"))?;
    if word(&v2, 0) != Some(V2_COOKIE) {
        return Err("not an HdrHistogram V2 cookie inside".into());
    }
    let digits = word(&v2, 12).unwrap_or(u32::MAX);
    if digits > MAX_DIGITS {
        return Err(format!(
            "{digits} significant digits, where at most {MAX_DIGITS} are read"
        ));
    }
    let payload = word(&v2, 4).map_or(usize::MAX, |n| n as usize);
    if payload > MAX_PAYLOAD {
        return Err(format!(
            "a payload of {payload} bytes, more than a histogram of {MAX_DIGITS} digits has"
        ));
    }
    reader
        .take(payload as u64)
        .read_to_end(&mut v2)
        .map_err(|e| format!("a damaged payload: {e}"))?;
    if v2.len() != V2_HEADER + payload {
        return Err(format!(
            "a payload of {payload} bytes announced and {} present",
            v2.len() - V2_HEADER
        ));
    }
    Ok(v2)
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

    /// Found while writing the report fuzz target (byte mutations of base64 text seldom make
    /// valid zlib, so it was crafted and run through the target, which reported
    /// `out-of-memory (malloc(4294967280))`): a 40-byte histogram whose V2 header announces a
    /// payload of almost 4 GiB made hdrhistogram allocate that much before reading a byte of
    /// it; `echotool report` under a 1.5 GB address-space limit died of SIGABRT.
    #[test]
    fn a_header_that_asks_for_gigabytes_is_refused_before_allocating() {
        let huge_payload = "HISTFAAAACB4nJNpmSz8////DwwQwAylGYGY94d7BIM9VAYA1GYICw==";
        let err = decode(huge_payload, "a.json").unwrap_err().to_string();
        assert!(
            err.contains("a payload of 4294967280 bytes, more than"),
            "{err}"
        );
        // Five digits over 2^63 would be 48 MiB of counts.
        let wide = "HISTFAAAABh4nJNpmSzMgACsUJqxAcqw/wChAUJLAvw=";
        let err = decode(wide, "a.json").unwrap_err().to_string();
        assert!(err.contains("5 significant digits"), "{err}");
        // A payload shorter than announced, and a length beyond the data.
        let mut h = Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
        h.record(7).unwrap();
        let mut plain = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut plain)
            .unwrap();
        assert_eq!(decode(&STANDARD.encode(&plain), "x").unwrap(), h);
        let err = decode(&STANDARD.encode(&plain[..plain.len() - 1]), "x").unwrap_err();
        assert!(err.to_string().contains("announced and"), "{err}");
        let mut deflated = STANDARD.decode(encode(&h)).unwrap();
        deflated[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = decode(&STANDARD.encode(&deflated), "x").unwrap_err();
        assert!(err.to_string().contains("shorter than its length"), "{err}");
    }
}
