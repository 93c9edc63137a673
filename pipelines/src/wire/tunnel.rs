//! Tunnel headers an office network carries, read far enough to find the packet inside:
//! IP in IP (RFC 2003, 6in4/4in6 RFC 4213), GRE (RFC 2784/2890), VXLAN (RFC 7348),
//! GTP-U (3GPP TS 29.281) and CAPWAP data (RFC 5415, 802.3 or 802.11 frames inside).

use super::be16;

pub const VXLAN_PORT: u16 = 4789;
pub const GTPU_PORT: u16 = 2152;
pub const CAPWAP_DATA_PORT: u16 = 5247;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TunnelKind {
    #[default]
    IpInIp,
    Gre,
    Vxlan,
    GtpU,
    Capwap,
}

impl TunnelKind {
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::IpInIp => "ip-in-ip",
            TunnelKind::Gre => "gre",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::GtpU => "gtp-u",
            TunnelKind::Capwap => "capwap",
        }
    }
}

/// What a tunnel header is followed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// An IPv4 or IPv6 packet (its version nibble says which).
    Ip,
    Ethernet,
    /// An IEEE 802.11 data frame (CAPWAP's native format).
    Wifi,
}

/// A GRE header: its length and what follows. Version 1 (PPTP) and source routing are
/// not looked through.
pub fn gre(b: &[u8]) -> Option<(usize, Inner)> {
    let flags = be16(b.get(..4)?, 0);
    if flags & 0x7 != 0 || flags & 0x4000 != 0 {
        return None;
    }
    let len = 4
        + 4 * usize::from(flags & 0x8000 != 0)
        + 4 * usize::from(flags & 0x2000 != 0)
        + 4 * usize::from(flags & 0x1000 != 0);
    let inner = match be16(b, 2) {
        0x0800 | 0x86dd => Inner::Ip,
        0x6558 => Inner::Ethernet,
        _ => return None,
    };
    (b.len() > len).then_some((len, inner))
}

/// A VXLAN header (the I flag set): an Ethernet frame follows its 8 bytes.
pub fn vxlan(b: &[u8]) -> Option<usize> {
    (b.len() > 8 && b[0] & 0x08 != 0).then_some(8)
}

/// A GTP-U G-PDU header (version 1, with its optional fields and extension headers): an
/// IP packet follows.
pub fn gtp_u(b: &[u8]) -> Option<usize> {
    let h = b.get(..8)?;
    if h[0] >> 5 != 1 || h[0] & 0x10 == 0 || h[1] != 0xff {
        return None;
    }
    let mut at = 8;
    if h[0] & 0x07 != 0 {
        // Sequence number, N-PDU number, next extension header type.
        let mut next = *b.get(at + 3)?;
        at += 4;
        for _ in 0..8 {
            if next == 0 {
                break;
            }
            let words = usize::from(*b.get(at)?);
            if words == 0 {
                return None;
            }
            next = *b.get(at + words * 4 - 1)?;
            at += words * 4;
        }
        if next != 0 {
            return None;
        }
    }
    (b.len() > at).then_some(at)
}

/// A CAPWAP data header, unfragmented: its length and the frame format that follows.
pub fn capwap_data(b: &[u8]) -> Option<(usize, Inner)> {
    let h = b.get(..8)?;
    if h[0] != 0 || h[3] & 0x80 != 0 {
        return None; // another preamble, or a fragment
    }
    let len = usize::from(h[1] >> 3) * 4;
    let native = h[2] & 0x01 != 0;
    let wbid = (h[2] >> 1) & 0x1f;
    let inner = match (native, wbid) {
        (false, _) => Inner::Ethernet,
        (true, 1) => Inner::Wifi,
        _ => return None,
    };
    (len >= 8 && b.len() > len).then_some((len, inner))
}

/// An 802.11 data frame carrying LLC/SNAP: the offset of its payload and the EtherType.
pub fn wifi_data(b: &[u8]) -> Option<(usize, u16)> {
    let mut fc = [*b.first()?, *b.get(1)?];
    let data = |f: u8| (f >> 2) & 3 == 2;
    if !data(fc[0]) && data(fc[1]) {
        // Some access points (Cisco's) send the frame control bytes swapped.
        fc.swap(0, 1);
    }
    if !data(fc[0]) || fc[0] & 0x40 != 0 {
        return None; // not data, or a null-function subtype
    }
    let qos = fc[0] & 0x80 != 0;
    let four_addr = fc[1] & 0x03 == 0x03;
    let order = fc[1] & 0x80 != 0;
    let mut at = 24 + 6 * usize::from(four_addr);
    if qos {
        at += 2 + 4 * usize::from(order);
    }
    if fc[1] & 0x40 != 0 {
        return None; // protected: nothing to read
    }
    let snap = b.get(at..at + 8)?;
    if snap[..6] != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return None;
    }
    Some((at + 8, be16(snap, 6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_measured_and_odd_ones_refused() {
        assert_eq!(gre(&[0, 0, 0x08, 0, 0x45]), Some((4, Inner::Ip)));
        assert_eq!(
            gre(&[0x20, 0, 0x65, 0x58, 0, 0, 0, 1, 0]),
            Some((8, Inner::Ethernet))
        );
        assert_eq!(gre(&[0, 1, 0x88, 0x0b, 0]), None, "PPTP");
        assert_eq!(gre(&[0, 0, 0x08, 0]), None, "nothing inside");
        assert_eq!(vxlan(&[8, 0, 0, 0, 0, 0, 1, 0, 0]), Some(8));
        assert_eq!(vxlan(&[0, 0, 0, 0, 0, 0, 1, 0, 0]), None);
        assert_eq!(gtp_u(&[0x30, 0xff, 0, 4, 0, 0, 0, 1, 0x45]), Some(8));
        // With an extension header (one word, then none).
        let ext = [
            0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 0, 0, 0x45,
        ];
        assert_eq!(gtp_u(&ext), Some(16));
        let endless = [
            0x34, 0xff, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0, 0x45,
        ];
        assert_eq!(gtp_u(&endless), None, "a zero-length extension");
        assert_eq!(gtp_u(&[0x30, 0x01, 0, 4, 0, 0, 0, 1, 0x45]), None, "echo");
        let mut cw = [0u8; 20];
        cw[1] = 2 << 3;
        cw[2] = (1 << 1) | 1;
        assert_eq!(capwap_data(&cw), Some((8, Inner::Wifi)));
        cw[3] = 0x80;
        assert_eq!(capwap_data(&cw), None, "a fragment");
        let mut w = vec![0x88, 0x01];
        w.resize(26, 0);
        w.extend_from_slice(&[0xaa, 0xaa, 3, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(wifi_data(&w), Some((34, 0x0800)));
        w.swap(0, 1);
        assert_eq!(wifi_data(&w), Some((34, 0x0800)), "swapped frame control");
    }
}
