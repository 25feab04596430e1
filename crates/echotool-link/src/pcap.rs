//! The capture: every packet that crossed the link, and every one it dropped, in a pcapng file
//! that Wireshark and tcpdump open, with nanosecond timestamps.
//!
//! pcapng rather than classic pcap because it can say more than bytes. The file has one
//! interface, `link`, of link type raw IP (LINKTYPE_RAW, as TUN carries no link header); each
//! packet's direction is in its `epb_flags` (outbound = up, client to server; inbound = down),
//! and a packet the link dropped carries a comment saying so and why (`dropped: loss`, `queue
//! full`, `over MTU`). One interface, because libpcap (and so tcpdump) refuses a second raw-IP
//! interface in one file; tools that ignore comments (plain `tcpdump -r`) therefore list
//! dropped packets too, and Wireshark can tell them apart with `frame.comment contains
//! "dropped"` and the directions with `frame.packet_flags_direction`. Delivered packets are
//! stamped when the link hands them to the far side, drops when they happen. The section
//! header's comment holds the link's spec.
//!
//! Writing uses the `pcap-file` crate (maintained, pure Rust, writes pcapng with options),
//! buffered, from the forwarder thread.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};

use crate::Recorder;
use crate::error::{LinkError, Result};
use crate::shaper::{Direction, DropReason, Nanos};
use crate::spec::LinkSpec;

/// `epb_flags` direction bits: inbound (down, toward the client) and outbound (up).
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;

/// A pcapng file being written.
pub(crate) struct Capture {
    writer: PcapNgWriter<BufWriter<File>>,
    /// Wall-clock time of the link's start, to turn link time into absolute timestamps.
    wall_start: Duration,
    path: String,
    /// Set after the first write error, which is reported once and ends the capture.
    failed: bool,
}

impl Capture {
    /// Creates the file and writes its header and interfaces.
    pub(crate) fn create(path: &Path, wall_start: SystemTime, spec: &LinkSpec) -> Result<Capture> {
        let shown = path.display().to_string();
        let fail = |reason: String| LinkError::Capture {
            path: shown.clone(),
            reason,
        };
        let file = File::create(path).map_err(|e| fail(e.to_string()))?;
        let section = SectionHeaderBlock {
            options: vec![
                SectionHeaderOption::UserApplication(Cow::Borrowed("echotool link emulator")),
                SectionHeaderOption::Comment(Cow::Owned(format!("link: {spec}"))),
            ],
            ..SectionHeaderBlock::default()
        };
        let mut writer = PcapNgWriter::with_section_header(BufWriter::new(file), section)
            .map_err(|e| fail(e.to_string()))?;
        let interface = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: 65_535,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("link")),
                InterfaceDescriptionOption::IfDescription(Cow::Borrowed(
                    "echotool link: outbound = client to server, inbound = server to client",
                )),
                // pcap-file writes nanoseconds; say so (the default would be microseconds).
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        };
        writer
            .write_pcapng_block(interface)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Capture {
            writer,
            wall_start: wall_start.duration_since(UNIX_EPOCH).unwrap_or_default(),
            path: shown,
            failed: false,
        })
    }
}

impl Recorder for Capture {
    fn record(&mut self, dir: Direction, at: Nanos, packet: &[u8], dropped: Option<DropReason>) {
        if self.failed {
            return;
        }
        let flags = match dir {
            Direction::Up => OUTBOUND,
            Direction::Down => INBOUND,
        };
        let mut options = vec![EnhancedPacketOption::Flags(flags)];
        if let Some(reason) = dropped {
            let comment = format!("dropped: {}", reason.as_str());
            options.push(EnhancedPacketOption::Comment(Cow::Owned(comment)));
        }
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: self.wall_start + Duration::from_nanos(at),
            original_len: packet.len() as u32,
            data: Cow::Borrowed(packet),
            options,
        };
        if let Err(err) = self.writer.write_pcapng_block(block) {
            eprintln!("link capture {}: {err}; capture stopped", self.path);
            self.failed = true;
        }
    }

    fn flush(&mut self) {
        if let Err(err) = self.writer.get_mut().flush() {
            eprintln!("link capture {}: {err}", self.path);
        }
    }
}
