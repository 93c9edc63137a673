//! Reading pcap and pcapng files, writing pcap. Written here rather than taken from a crate
//! because replay must report exactly where a damaged file went wrong and carry on up to
//! that point, and must not allocate per packet.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Ethernet, the only link type the gateway's data path carries.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IPv4/IPv6 (also written as 12 or 14 by some tools).
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// Writes `data`, captured with `linktype`, into `out` as an Ethernet frame (zero MACs,
/// the EtherType the capture gives). False for link types we do not read; those records
/// are skipped and counted.
pub fn to_ethernet(linktype: u32, data: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let (ethertype, payload) = match linktype {
        LINKTYPE_ETHERNET => {
            out.extend_from_slice(data);
            return true;
        }
        // Raw IP (101, and the old 12/14), IPv4 (228), IPv6 (229).
        LINKTYPE_RAW | 12 | 14 | 228 | 229 => match ip_ethertype(data) {
            Some(e) => (e, data),
            None => return false,
        },
        // BSD loopback (0: address family in the writer's byte order; 108: network
        // order): 2 is IPv4, 24/28/30 IPv6 on the BSDs and macOS.
        0 | 108 if data.len() >= 4 => {
            let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let af = if le < 256 { le } else { be };
            match af {
                2 => (0x0800, &data[4..]),
                24 | 28 | 30 => (0x86dd, &data[4..]),
                _ => return false,
            }
        }
        // PPP (9): optional address/control FF 03, then the protocol.
        9 => {
            let d = data.strip_prefix(&[0xff, 0x03]).unwrap_or(data);
            match d.get(..2).map(|p| u16::from_be_bytes([p[0], p[1]])) {
                Some(0x0021) => (0x0800, &d[2..]),
                Some(0x0057) => (0x86dd, &d[2..]),
                _ => return false,
            }
        }
        // Cisco HDLC (104): address, control, then an EtherType.
        104 if data.len() >= 4 => match u16::from_be_bytes([data[2], data[3]]) {
            e @ (0x0800 | 0x86dd) => (e, &data[4..]),
            _ => return false,
        },
        LINKTYPE_LINUX_SLL if data.len() >= 16 => {
            (u16::from_be_bytes([data[14], data[15]]), &data[16..])
        }
        LINKTYPE_LINUX_SLL2 if data.len() >= 20 => {
            (u16::from_be_bytes([data[0], data[1]]), &data[20..])
        }
        _ => return false,
    };
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    true
}
fn ip_ethertype(data: &[u8]) -> Option<u16> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Some(0x0800),
        Some(6) => Some(0x86dd),
        _ => None,
    }
}

/// A record or block larger than this is damage, not data.
const MAX_RECORD: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open: {source}")]
    Open { path: String, source: io::Error },
    #[error("not a pcap or pcapng file (magic {0:#010x})")]
    NotACapture(u32),
    #[error("file ends inside record {record} at byte {offset}")]
    Truncated { record: u64, offset: u64 },
    #[error("record {record} at byte {offset}: {reason}")]
    BadRecord {
        record: u64,
        offset: u64,
        reason: String,
    },
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: u32,
    },
    PcapNg {
        big_endian: bool,
    },
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// One packet: its time, its bytes as captured, and its link type.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub ts_ns: u64,
    pub data: &'a [u8],
    pub orig_len: u32,
    pub linktype: u32,
}

pub struct CaptureReader<R: Read> {
    r: R,
    format: Format,
    interfaces: Vec<Interface>,
    buf: Vec<u8>,
    offset: u64,
    records: u64,
}

impl CaptureReader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let f = File::open(path).map_err(|source| CaptureError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(BufReader::with_capacity(1 << 20, f))
    }
}

fn u32_at(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_at(b: &[u8], big: bool) -> u16 {
    if big {
        u16::from_be_bytes([b[0], b[1]])
    } else {
        u16::from_le_bytes([b[0], b[1]])
    }
}

impl<R: Read> CaptureReader<R> {
    pub fn new(mut r: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        read_exact_or(&mut r, &mut magic, 0, 0)?;
        let m = u32::from_le_bytes(magic);
        let mut this = Self {
            r,
            format: Format::PcapNg { big_endian: false },
            interfaces: Vec::new(),
            buf: Vec::with_capacity(65536),
            offset: 4,
            records: 0,
        };
        match m {
            0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
                let big = matches!(m, 0xd4c3_b2a1 | 0x4d3c_b2a1);
                let nanos = matches!(m, 0xa1b2_3c4d | 0x4d3c_b2a1);
                let mut h = [0u8; 20];
                this.read(&mut h)?;
                let linktype = u32_at(&h[16..], big) & 0x0fff_ffff;
                this.format = Format::Pcap {
                    big_endian: big,
                    nanos,
                    linktype,
                };
            }
            0x0a0d_0d0a => {
                // Section header: the byte-order magic decides the endianness of the section.
                let mut h = [0u8; 8];
                this.read(&mut h)?;
                let big = match u32::from_le_bytes([h[4], h[5], h[6], h[7]]) {
                    0x1a2b_3c4d => false,
                    0x4d3c_2b1a => true,
                    other => {
                        return Err(CaptureError::BadRecord {
                            record: 0,
                            offset: 0,
                            reason: format!("bad pcapng byte-order magic {other:#x}"),
                        });
                    }
                };
                let len = u32_at(&h[..4], big) as usize;
                if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                    return Err(CaptureError::BadRecord {
                        record: 0,
                        offset: 0,
                        reason: format!("bad section header length {len}"),
                    });
                }
                this.skip(len - 12)?;
                this.format = Format::PcapNg { big_endian: big };
            }
            other => return Err(CaptureError::NotACapture(other)),
        }
        Ok(this)
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn read(&mut self, out: &mut [u8]) -> Result<(), CaptureError> {
        read_exact_or(&mut self.r, out, self.records, self.offset)?;
        self.offset += out.len() as u64;
        Ok(())
    }

    fn read_into_buf(&mut self, len: usize) -> Result<(), CaptureError> {
        self.buf.resize(len, 0);
        read_exact_or(&mut self.r, &mut self.buf, self.records, self.offset)?;
        self.offset += len as u64;
        Ok(())
    }

    fn skip(&mut self, n: usize) -> Result<(), CaptureError> {
        let copied =
            io::copy(&mut (&mut self.r).take(n as u64), &mut io::sink()).map_err(|source| {
                CaptureError::Io {
                    offset: self.offset,
                    source,
                }
            })?;
        self.offset += copied;
        if copied < n as u64 {
            return Err(CaptureError::Truncated {
                record: self.records,
                offset: self.offset,
            });
        }
        Ok(())
    }

    /// The next packet, `Ok(None)` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, CaptureError> {
        match self.format {
            Format::Pcap {
                big_endian,
                nanos,
                linktype,
            } => self.next_pcap(big_endian, nanos, linktype),
            Format::PcapNg { big_endian } => self.next_pcapng(big_endian),
        }
    }

    /// Reads a record header; `Ok(false)` at a clean end of file (no byte of it present).
    fn read_header(&mut self, out: &mut [u8]) -> Result<bool, CaptureError> {
        let mut got = 0;
        while got < out.len() {
            match self.r.read(&mut out[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => {
                    return Err(CaptureError::Truncated {
                        record: self.records + 1,
                        offset: self.offset + got as u64,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Io {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
        self.offset += got as u64;
        Ok(true)
    }

    fn next_pcap(
        &mut self,
        big: bool,
        nanos: bool,
        linktype: u32,
    ) -> Result<Option<Record<'_>>, CaptureError> {
        let start = self.offset;
        let mut h = [0u8; 16];
        if !self.read_header(&mut h)? {
            return Ok(None);
        }
        let record = self.records + 1;
        let (sec, frac) = (
            u64::from(u32_at(&h[0..], big)),
            u64::from(u32_at(&h[4..], big)),
        );
        let caplen = u32_at(&h[8..], big) as usize;
        let orig_len = u32_at(&h[12..], big);
        if caplen > MAX_RECORD {
            return Err(CaptureError::BadRecord {
                record,
                offset: start,
                reason: format!("captured length {caplen} is implausible"),
            });
        }
        self.records = record;
        self.read_into_buf(caplen)?;
        // A sub-second part of a second or more (some writers) carries into the seconds,
        // as tshark reads it, rather than ending the capture.
        let ts_ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        Ok(Some(Record {
            ts_ns,
            data: &self.buf,
            orig_len,
            linktype,
        }))
    }

    fn next_pcapng(&mut self, big: bool) -> Result<Option<Record<'_>>, CaptureError> {
        loop {
            let start = self.offset;
            let mut h = [0u8; 8];
            if !self.read_header(&mut h)? {
                return Ok(None);
            }
            let record = self.records + 1;
            let block_type = u32_at(&h[0..], big);
            let len = u32_at(&h[4..], big) as usize;
            let bad = |reason: String| CaptureError::BadRecord {
                record,
                offset: start,
                reason,
            };
            if block_type == 0x0a0d_0d0a {
                // A new section may switch endianness: re-read it from its own magic.
                let mut bom = [0u8; 4];
                self.read(&mut bom)?;
                let big = match u32::from_le_bytes(bom) {
                    0x1a2b_3c4d => false,
                    0x4d3c_2b1a => true,
                    other => return Err(bad(format!("bad pcapng byte-order magic {other:#x}"))),
                };
                let len = u32_at(&h[4..], big) as usize;
                if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                    return Err(bad(format!("bad section header length {len}")));
                }
                self.skip(len - 12)?;
                self.format = Format::PcapNg { big_endian: big };
                self.interfaces.clear();
                return self.next_pcapng(big);
            }
            if !(12..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                return Err(bad(format!(
                    "block length {len} is not a multiple of 4 from 12 to {MAX_RECORD}"
                )));
            }
            self.read_into_buf(len - 8)?;
            let body = &self.buf[..len - 12];
            match block_type {
                1 => {
                    if body.len() < 8 {
                        return Err(bad("interface description block too short".into()));
                    }
                    let linktype = u32::from(u16_at(body, big));
                    let units_per_sec = tsresol(&body[8..], big).map_err(bad)?;
                    if self.interfaces.len() >= 1024 {
                        return Err(bad("more than 1024 interfaces".into()));
                    }
                    self.interfaces.push(Interface {
                        linktype,
                        units_per_sec,
                    });
                }
                6 => {
                    if body.len() < 20 {
                        return Err(bad("enhanced packet block too short".into()));
                    }
                    let iface = u32_at(body, big) as usize;
                    let Some(&ifc) = self.interfaces.get(iface) else {
                        return Err(bad(format!("packet on undeclared interface {iface}")));
                    };
                    let ts = (u64::from(u32_at(&body[4..], big)) << 32)
                        | u64::from(u32_at(&body[8..], big));
                    let caplen = u32_at(&body[12..], big) as usize;
                    let orig_len = u32_at(&body[16..], big);
                    if 20 + caplen > body.len() {
                        return Err(bad(format!("captured length {caplen} runs past the block")));
                    }
                    self.records = record;
                    let ts_ns = scale_ts(ts, ifc.units_per_sec);
                    return Ok(Some(Record {
                        ts_ns,
                        data: &self.buf[20..20 + caplen],
                        orig_len,
                        linktype: ifc.linktype,
                    }));
                }
                3 => {
                    if body.len() < 4 {
                        return Err(bad("simple packet block too short".into()));
                    }
                    let Some(&ifc) = self.interfaces.first() else {
                        return Err(bad("simple packet before any interface".into()));
                    };
                    let orig_len = u32_at(body, big);
                    let caplen = (orig_len as usize).min(body.len() - 4);
                    self.records = record;
                    return Ok(Some(Record {
                        ts_ns: 0,
                        data: &self.buf[4..4 + caplen],
                        orig_len,
                        linktype: ifc.linktype,
                    }));
                }
                _ => {} // statistics, name resolution, custom blocks: nothing to replay
            }
        }
    }
}

/// Timestamp units per second from an interface's options (`if_tsresol`, default µs).
fn tsresol(mut opts: &[u8], big: bool) -> Result<u64, String> {
    while opts.len() >= 4 {
        let code = u16_at(opts, big);
        let len = usize::from(u16_at(&opts[2..], big));
        let padded = len.div_ceil(4) * 4;
        if 4 + padded > opts.len() {
            return Err("interface option runs past its block".into());
        }
        if code == 0 {
            break;
        }
        if code == 9 && len == 1 {
            let v = opts[4];
            return if v & 0x80 == 0 {
                10u64
                    .checked_pow(u32::from(v))
                    .filter(|&u| u <= 1_000_000_000_000_000_000)
                    .ok_or(format!("if_tsresol 10^-{v} unsupported"))
            } else {
                1u64.checked_shl(u32::from(v & 0x7f))
                    .filter(|&u| v & 0x7f < 63 && u > 0)
                    .ok_or(format!("if_tsresol 2^-{} unsupported", v & 0x7f))
            };
        }
        opts = &opts[4 + padded..];
    }
    Ok(1_000_000)
}

fn scale_ts(ts: u64, units_per_sec: u64) -> u64 {
    (u128::from(ts) * 1_000_000_000 / u128::from(units_per_sec.max(1))).min(u128::from(u64::MAX))
        as u64
}

fn read_exact_or<R: Read>(
    r: &mut R,
    out: &mut [u8],
    record: u64,
    offset: u64,
) -> Result<(), CaptureError> {
    r.read_exact(out).map_err(|source| match source.kind() {
        io::ErrorKind::UnexpectedEof => CaptureError::Truncated {
            record: record.max(1),
            offset,
        },
        _ => CaptureError::Io { offset, source },
    })
}

/// Writes Ethernet frames to a nanosecond-resolution pcap file.
pub struct PcapWriter<W: Write> {
    w: W,
}

impl PcapWriter<BufWriter<File>> {
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::new(BufWriter::with_capacity(1 << 20, File::create(path)?))
    }
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(Self { w })
    }

    pub fn write(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.w.write_all(&h)?;
        self.w.write_all(frame)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_of(frames: &[&[u8]]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write(1_000_000_000 * (i as u64 + 1) + 7, f).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn every_link_type_suricata_reads_becomes_an_ethernet_frame() {
        let v4 = [0x45u8, 0, 0, 20];
        let v6 = [0x60u8, 0, 0, 0];
        let mut out = Vec::new();
        let ethertype = |out: &Vec<u8>| u16::from_be_bytes([out[12], out[13]]);
        let cases: &[(u32, Vec<u8>, u16)] = &[
            (0, [&2u32.to_le_bytes()[..], &v4].concat(), 0x0800),
            (0, [&30u32.to_be_bytes()[..], &v6].concat(), 0x86dd),
            (108, [&2u32.to_be_bytes()[..], &v4].concat(), 0x0800),
            (9, [&[0xff, 0x03, 0x00, 0x21][..], &v4].concat(), 0x0800),
            (9, [&[0x00, 0x57][..], &v6].concat(), 0x86dd),
            (104, [&[0x0f, 0x00, 0x08, 0x00][..], &v4].concat(), 0x0800),
            (228, v4.to_vec(), 0x0800),
            (229, v6.to_vec(), 0x86dd),
            (101, v6.to_vec(), 0x86dd),
        ];
        for (lt, data, want) in cases {
            assert!(to_ethernet(*lt, data, &mut out), "link type {lt}");
            assert_eq!(ethertype(&out), *want, "link type {lt}");
            assert_eq!(out[14] >> 4, if *want == 0x0800 { 4 } else { 6 });
        }
        for (lt, data) in [
            (0u32, vec![99u8, 0, 0, 0, 0x45]),
            (9, vec![0xc0, 0x21]),
            (147, v4.to_vec()),
        ] {
            assert!(!to_ethernet(lt, &data, &mut out), "link type {lt}");
        }
    }

    #[test]
    fn microseconds_past_a_second_carry_into_the_seconds() {
        let mut bytes = pcap_of(&[b"abc", b"de"]);
        // The first record's sub-second part (the writer's is in nanoseconds, after the
        // 24-byte file header): 1.5 s.
        bytes[28..32].copy_from_slice(&1_500_000_000u32.to_le_bytes());
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap().ts_ns, 2_500_000_000);
        assert_eq!(
            r.next_record().unwrap().unwrap().data,
            b"de",
            "reading goes on"
        );
    }

    #[test]
    fn pcap_round_trip() {
        let bytes = pcap_of(&[b"abc", b"defgh"]);
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        let a = r.next_record().unwrap().unwrap();
        assert_eq!(
            (a.data, a.ts_ns, a.linktype),
            (&b"abc"[..], 1_000_000_007, 1)
        );
        assert_eq!(r.next_record().unwrap().unwrap().data, b"defgh");
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn truncated_mid_record_reports_where() {
        let bytes = pcap_of(&[b"abc", b"defgh"]);
        let cut = &bytes[..bytes.len() - 2];
        let mut r = CaptureReader::new(cut).unwrap();
        assert!(r.next_record().unwrap().is_some());
        match r.next_record() {
            Err(CaptureError::Truncated { record: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        // Cut inside the second record header.
        let cut = &bytes[..24 + 16 + 3 + 5];
        let mut r = CaptureReader::new(cut).unwrap();
        assert!(r.next_record().unwrap().is_some());
        assert!(matches!(
            r.next_record(),
            Err(CaptureError::Truncated { record: 2, .. })
        ));
    }

    #[test]
    fn not_a_capture_is_refused() {
        assert!(matches!(
            CaptureReader::new(&b"GIF89a.........................."[..]),
            Err(CaptureError::NotACapture(_))
        ));
        assert!(matches!(
            CaptureReader::new(&b"\xd4\xc3"[..]),
            Err(CaptureError::Truncated { .. })
        ));
    }

    fn block(t: u32, body: &[u8]) -> Vec<u8> {
        let len = 12 + body.len().div_ceil(4) * 4;
        let mut b = t.to_le_bytes().to_vec();
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len - 4, 0);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b
    }

    #[test]
    fn pcapng_with_nanosecond_interface() {
        let mut f = block(
            0x0a0d_0d0a,
            &[
                0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        // IDB: Ethernet, snaplen, if_tsresol = 9 (ns), end of options.
        f.extend(block(
            1,
            &[1, 0, 0, 0, 0, 0, 4, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0],
        ));
        let ts: u64 = 1_795_708_800_123_456_789;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&3u32.to_le_bytes());
        epb.extend_from_slice(&3u32.to_le_bytes());
        epb.extend_from_slice(b"xyz");
        f.extend(block(6, &epb));
        f.extend(block(5, &[0; 8])); // interface statistics: skipped
        let mut r = CaptureReader::new(&f[..]).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!((rec.data, rec.ts_ns), (&b"xyz"[..], ts));
        assert!(r.next_record().unwrap().is_none());
    }

    #[test]
    fn pcapng_packet_on_unknown_interface_is_damage() {
        let mut f = block(
            0x0a0d_0d0a,
            &[
                0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        );
        f.extend(block(6, &[0; 20]));
        let mut r = CaptureReader::new(&f[..]).unwrap();
        assert!(matches!(
            r.next_record(),
            Err(CaptureError::BadRecord { record: 1, .. })
        ));
    }
}
