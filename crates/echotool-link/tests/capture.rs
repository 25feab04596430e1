//! The capture and the trace read back by independent tools: the pcapng file by tcpdump (when
//! installed; `tests/peers.sh` installs it) and always by a small Python pcapng reader, the
//! trace by eye of the assertions. Needs root; skips with a message without it.

mod common;

use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use echotool_link::LinkOptions;

/// A writer whose bytes the test reads after the link is gone.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("trace buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lists each IPv4 TCP packet of a pcapng file as "up|down flags", plus "comment ..." lines, without any library: proof the file follows the format.
const PCAPNG_READER: &str = r#"
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x0a\x0d\x0d\x0a", "not pcapng"
bo = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
names, off = [], 0
while off < len(data):
    btype, blen = struct.unpack(bo + "II", data[off:off + 8])
    body = data[off + 8:off + blen - 4]
    def options(raw):
        out, i = [], 0
        while i + 4 <= len(raw):
            code, olen = struct.unpack(bo + "HH", raw[i:i + 4])
            if code == 0: break
            out.append((code, raw[i + 4:i + 4 + olen]))
            i += 4 + olen + (-olen % 4)
        return out
    if btype == 1:
        linktype, = struct.unpack(bo + "H", body[:2])
        assert linktype == 101, linktype
        opts = dict(options(body[8:]))
        assert opts.get(9) == b"\x09", "timestamps are not nanoseconds"
        names.append(opts[2].decode())
    elif btype == 6:
        iface, hi, lo, caplen, origlen = struct.unpack(bo + "IIIII", body[:20])
        pkt = body[20:20 + caplen]
        opts = options(body[20 + caplen + (-caplen % 4):])
        epb_flags = [struct.unpack(bo + "I", v)[0] for c, v in opts if c == 2]
        way = {1: "down", 2: "up"}[epb_flags[0] & 3]
        if pkt[0] >> 4 == 4 and pkt[9] == 6:
            ihl = (pkt[0] & 15) * 4
            flags = pkt[ihl + 13]
            print(names[iface], way, "SYN" if flags & 2 else "", "ACK" if flags & 16 else "")
        for code, value in opts:
            if code == 1: print("comment", value.decode())
    off += blen
"#;

fn python_reads(path: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(PCAPNG_READER)
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// tcpdump's reading of the SYNs in the file, or `None` when tcpdump is not installed.
fn tcpdump_syns(path: &Path) -> Option<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(path)
        .arg("tcp[tcpflags] & tcp-syn != 0")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn capture_and_trace_show_the_handshake() {
    if !root_or_skip("capture_and_trace_show_the_handshake") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("echotool-link-capture-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("link.pcapng");
    let trace = Shared::default();
    let options = LinkOptions {
        pcap: Some(path.clone()),
        trace: Some(Box::new(trace.clone())),
        ..LinkOptions::default()
    };
    let link = link("delay=1ms,up:mtu=1280", options);
    let listener = tcp_listener(link.server(), false);
    let to = listener.local_addr().expect("listener address");
    let mut client = tcp_connect(link.client(), to);
    let (mut served, _) = listener.accept().expect("accept");
    // A TLS-looking record, to see the trace name it.
    client.write_all(&[23, 3, 3, 0, 3, 1, 2, 3]).expect("send");
    let mut got = [0u8; 8];
    served
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    served.read_exact(&mut got).expect("receive");
    drop((client, served, listener));
    drop(link); // stops the forwarder, which flushes the capture and the trace

    let read = python_reads(&path);
    eprintln!("python reads:\n{read}");
    assert!(read.lines().any(|l| l == "link up SYN "), "{read}");
    assert!(read.lines().any(|l| l == "link down SYN ACK"), "{read}");
    match tcpdump_syns(&path) {
        Some(text) => {
            eprintln!("tcpdump reads:\n{text}");
            assert!(text.contains("Flags [S]"), "{text}");
            assert!(text.contains("Flags [S.]"), "{text}");
        }
        None => eprintln!("tcpdump is not installed (tests/peers.sh installs it); python only"),
    }
    let trace = String::from_utf8(trace.0.lock().expect("trace").clone()).expect("utf-8");
    eprintln!("trace:\n{trace}");
    let syn = trace
        .lines()
        .find(|l| l.contains("[SYN]"))
        .expect("SYN line");
    assert!(
        syn.contains("→ TCP 198.18.0.2:") && syn.contains("seq=0"),
        "{syn}"
    );
    assert!(
        trace
            .lines()
            .any(|l| l.contains("← TCP") && l.contains("[SYN,ACK] seq=0 ack=1"))
    );
    assert!(trace.contains("len=8 TLS application_data"), "{trace}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn drops_are_captured_with_their_reason() {
    if !root_or_skip("drops_are_captured_with_their_reason") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("echotool-link-drops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("drops.pcapng");
    let options = LinkOptions {
        pcap: Some(path.clone()),
        ..LinkOptions::default()
    };
    let link = link("up:loss=100%", options);
    let listener = tcp_listener(link.server(), false);
    let to = listener.local_addr().expect("listener address");
    let client = link.client().clone();
    // A SYN that never arrives; connect gives up after a short timeout.
    let result = inside(&client, || {
        std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300))
    });
    assert!(
        result.is_err(),
        "connected through a link that loses everything"
    );
    drop(link);
    let read = python_reads(&path);
    assert!(
        read.contains("link up SYN \ncomment dropped: loss"),
        "{read}"
    );
    assert!(read.contains("comment dropped: loss"), "{read}");
    let _ = std::fs::remove_dir_all(&dir);
}
