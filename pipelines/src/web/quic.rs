//! Reading the ClientHello of QUIC client Initials (RFC 9000 17.2, RFC 9001 5; version 2,
//! RFC 9369; the IETF drafts and mvfst versions still seen in captures). The Initial keys
//! come from the Destination Connection ID and the version's published salt, so a gateway
//! can remove header protection, decrypt the payload and read the ClientHello in its
//! CRYPTO frames. A datagram may carry several coalesced packets; a ClientHello may span
//! several Initials (the caller joins their CRYPTO frames by offset). Works in a caller's
//! scratch buffer; allocates nothing.

use ring::aead::{self, quic};
use ring::hkdf;

/// RFC 9001 5.2 (also drafts 33 and 34).
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
/// RFC 9369 3.3.1.
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
/// draft-ietf-quic-tls-22 (and mvfst's version built on it).
const SALT_DRAFT22: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];
/// draft-ietf-quic-tls-23 to -28 (and mvfst's later versions).
const SALT_DRAFT23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
/// draft-ietf-quic-tls-29 to -32.
const SALT_DRAFT29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];

pub const V1: u32 = 1;
/// RFC 9369.
pub const V2: u32 = 0x6b33_43cf;
/// mvfst (Facebook) versions: draft-22 based, draft-27 based, experimental.
const MVFST_22: u32 = 0xface_b001;
const MVFST_27: u32 = 0xface_b002;
const MVFST_EXP: u32 = 0xface_b00e;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    #[error("not a QUIC long-header packet")]
    NotLong,
    #[error("QUIC version {0:#x} is not read")]
    Version(u32),
    #[error("packet cut short")]
    Short,
    #[error("the payload did not decrypt")]
    Decrypt,
    #[error("malformed frames")]
    Frames,
}

/// How a version protects its Initials: the salt, and whether it uses v2's labels and
/// packet type numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    salt: &'static [u8; 20],
    v2: bool,
}

/// The Initial protection of `version`, if it is one we read.
pub fn flavor(version: u32) -> Option<Flavor> {
    let v1 = |salt| Some(Flavor { salt, v2: false });
    match version {
        V1 | 0xff00_0021..=0xff00_0022 => v1(&SALT_V1),
        V2 => Some(Flavor {
            salt: &SALT_V2,
            v2: true,
        }),
        0xff00_0016 | MVFST_22 => v1(&SALT_DRAFT22),
        0xff00_0017..=0xff00_001c | MVFST_27 | MVFST_EXP => v1(&SALT_DRAFT23),
        0xff00_001d..=0xff00_0020 => v1(&SALT_DRAFT29),
        _ => None,
    }
}

/// Long-header packet types (RFC 9000 17.2; v2 renumbers them, RFC 9369 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
    /// Version 0: the server lists the versions it speaks.
    VersionNegotiation,
    /// A version we do not read: only the invariant header is known.
    Unknown,
}

/// One long-header packet of a datagram.
#[derive(Clone, Copy, Debug)]
pub struct LongPacket<'a> {
    pub version: u32,
    pub kind: Kind,
    pub dcid: &'a [u8],
    /// The packet, header included, up to the end its Length field gives.
    pub bytes: &'a [u8],
    /// Where the (protected) packet number starts in `bytes`.
    pn_at: usize,
}

/// True for a datagram that starts with a QUIC long header (of any version and type).
pub fn looks_like_long(d: &[u8]) -> bool {
    d.len() >= 7 && d[0] & 0x80 != 0 && d[0] & 0x40 != 0
}

/// The first long-header packet of `d`, and the bytes after it (the next coalesced
/// packet). Packets without a Length (Retry, Version Negotiation, unknown versions) take
/// the rest of the datagram.
pub fn next_packet(d: &[u8]) -> Result<(LongPacket<'_>, &[u8]), QuicError> {
    if d.len() < 7 || d[0] & 0x80 == 0 {
        return Err(QuicError::NotLong);
    }
    let version = u32::from_be_bytes([d[1], d[2], d[3], d[4]]);
    let dcid_len = usize::from(d[5]);
    let dcid = d.get(6..6 + dcid_len).ok_or(QuicError::Short)?;
    let mut at = 6 + dcid_len;
    let whole = |kind| {
        Ok((
            LongPacket {
                version,
                kind,
                dcid,
                bytes: d,
                pn_at: 0,
            },
            &d[d.len()..],
        ))
    };
    if version == 0 {
        return whole(Kind::VersionNegotiation);
    }
    let Some(fl) = flavor(version) else {
        return whole(Kind::Unknown);
    };
    if dcid_len > 20 {
        return Err(QuicError::NotLong);
    }
    let kind = match ((d[0] >> 4) & 3, fl.v2) {
        (0, false) | (1, true) => Kind::Initial,
        (1, false) | (2, true) => Kind::ZeroRtt,
        (2, false) | (3, true) => Kind::Handshake,
        _ => return whole(Kind::Retry),
    };
    let scid_len = usize::from(*d.get(at).ok_or(QuicError::Short)?);
    at += 1 + scid_len;
    if kind == Kind::Initial {
        let token_len = varint(d, &mut at).ok_or(QuicError::Short)?;
        at = at
            .checked_add(usize::try_from(token_len).map_err(|_| QuicError::Short)?)
            .ok_or(QuicError::Short)?;
    }
    let length = varint(d, &mut at).ok_or(QuicError::Short)? as usize;
    let end = at.checked_add(length).ok_or(QuicError::Short)?;
    if end > d.len() {
        return Err(QuicError::Short);
    }
    Ok((
        LongPacket {
            version,
            kind,
            dcid,
            bytes: &d[..end],
            pn_at: at,
        },
        &d[end..],
    ))
}

/// The client's Initial keys.
pub struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 7.1) with an empty context.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    // Lengths here are fixed and small, so expansion cannot fail.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// Derives the client Initial keys from the Destination Connection ID (RFC 9001 5.2;
/// v2's labels per RFC 9369 3.3.2).
pub fn client_initial_keys(fl: Flavor, dcid: &[u8]) -> InitialKeys {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, fl.salt).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret);
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let mut k = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    let labels: [&[u8]; 3] = if fl.v2 {
        [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"]
    } else {
        [b"quic key", b"quic iv", b"quic hp"]
    };
    expand_label(&client, labels[0], &mut k.key);
    expand_label(&client, labels[1], &mut k.iv);
    expand_label(&client, labels[2], &mut k.hp);
    k
}

fn varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let first = *b.get(*at)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*at..*at + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *at += len;
    Some(v)
}

/// Removes the protection of a client Initial in `scratch`; returns its plaintext frames.
pub fn open_initial<'s>(p: &LongPacket<'_>, scratch: &'s mut [u8]) -> Result<&'s [u8], QuicError> {
    let fl = flavor(p.version).ok_or(QuicError::Version(p.version))?;
    if p.kind != Kind::Initial {
        return Err(QuicError::NotLong);
    }
    let (packet, pn_at) = (p.bytes, p.pn_at);
    if packet.len() < pn_at + 20 + 16 || packet.len() > scratch.len() {
        return Err(QuicError::Short);
    }
    let keys = client_initial_keys(fl, p.dcid);
    let sample = &packet[pn_at + 4..pn_at + 20];
    let hp =
        quic::HeaderProtectionKey::new(&quic::AES_128, &keys.hp).map_err(|_| QuicError::Decrypt)?;
    let mask = hp.new_mask(sample).map_err(|_| QuicError::Decrypt)?;
    let buf = &mut scratch[..packet.len()];
    buf.copy_from_slice(packet);
    buf[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(buf[0] & 3) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        buf[pn_at + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(buf[pn_at + i]);
    }
    let mut nonce = keys.iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &keys.key).map_err(|_| QuicError::Decrypt)?,
    );
    let (header, payload) = buf.split_at_mut(pn_at + pn_len);
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&*header),
            payload,
        )
        .map_err(|_| QuicError::Decrypt)?;
    Ok(plain)
}

/// Calls `f(offset, data)` for each CRYPTO frame of an Initial's plaintext, in packet
/// order (frames may be shuffled: the caller places them by offset). Frames an Initial
/// may not carry end the walk.
pub fn crypto_frames(plain: &[u8], mut f: impl FnMut(u64, &[u8])) -> Result<(), QuicError> {
    let mut at = 0;
    while at < plain.len() {
        let t = varint(plain, &mut at).ok_or(QuicError::Frames)?;
        match t {
            0x00 => {
                // PADDING comes in long runs: skip the run at once.
                at += plain[at..]
                    .iter()
                    .position(|&b| b != 0)
                    .unwrap_or(plain.len() - at);
            }
            0x01 => {} // PING
            0x02 | 0x03 => {
                // ACK: largest, delay, range count, first range, ranges, (ECN)
                for _ in 0..2 {
                    varint(plain, &mut at).ok_or(QuicError::Frames)?;
                }
                let n = varint(plain, &mut at).ok_or(QuicError::Frames)?;
                varint(plain, &mut at).ok_or(QuicError::Frames)?;
                for _ in 0..n.min(256) * 2 {
                    varint(plain, &mut at).ok_or(QuicError::Frames)?;
                }
                if t == 0x03 {
                    for _ in 0..3 {
                        varint(plain, &mut at).ok_or(QuicError::Frames)?;
                    }
                }
            }
            0x06 => {
                let off = varint(plain, &mut at).ok_or(QuicError::Frames)?;
                let len = varint(plain, &mut at).ok_or(QuicError::Frames)? as usize;
                let data = plain
                    .get(at..at.saturating_add(len))
                    .ok_or(QuicError::Frames)?;
                at += len;
                f(off, data);
            }
            0x1c => {
                // CONNECTION_CLOSE: code, frame type, reason
                for _ in 0..2 {
                    varint(plain, &mut at).ok_or(QuicError::Frames)?;
                }
                let n = varint(plain, &mut at).ok_or(QuicError::Frames)? as usize;
                at = at.saturating_add(n);
            }
            _ => break,
        }
    }
    Ok(())
}

/// The SNI of Google QUIC's plaintext client hello (versions up to Q046): a `CHLO`
/// message, its tag count, then (tag, end offset) pairs and the values. Later gQUIC
/// versions (Q050, T05x) encrypt it and are not read.
pub fn gquic_chlo_sni(datagram: &[u8]) -> Option<&str> {
    let head = &datagram[..datagram.len().min(160)];
    let at = head.windows(4).position(|w| w == b"CHLO")?;
    let msg = &datagram[at + 4..];
    let tags = usize::from(u16::from_le_bytes([*msg.first()?, *msg.get(1)?]));
    if tags == 0 || tags > 64 {
        return None;
    }
    let values_at = 4 + tags * 8;
    let values = msg.get(values_at..)?;
    let mut start = 0usize;
    for i in 0..tags {
        let e = msg.get(4 + i * 8..12 + i * 8)?;
        let end = u32::from_le_bytes([e[4], e[5], e[6], e[7]]) as usize;
        if end < start || end > values.len() {
            return None;
        }
        if &e[..4] == b"SNI\0" {
            let name = std::str::from_utf8(&values[start..end]).ok()?;
            let ok = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
            return ok.then_some(name);
        }
        start = end;
    }
    None
}

/// Builds a protected client Initial of `version` carrying `crypto` at CRYPTO offset
/// `offset`, padded to 1,200 bytes (tests and the synthesizer).
pub fn seal_initial(
    version: u32,
    dcid: &[u8],
    offset: u16,
    crypto: &[u8],
    out: &mut [u8],
) -> Option<usize> {
    let fl = flavor(version)?;
    let keys = client_initial_keys(fl, dcid);
    let pn_len = 2;
    // Header: flags, version, dcid, scid (0), token (0), length (2-byte varint), pn
    let mut at = 0;
    fn put(out: &mut [u8], at: &mut usize, b: &[u8]) -> Option<()> {
        out.get_mut(*at..*at + b.len())?.copy_from_slice(b);
        *at += b.len();
        Some(())
    }
    let initial_type = if fl.v2 { 0x10 } else { 0 };
    put(out, &mut at, &[0xc0 | initial_type | (pn_len as u8 - 1)])?;
    put(out, &mut at, &version.to_be_bytes())?;
    put(out, &mut at, &[dcid.len() as u8])?;
    put(out, &mut at, dcid)?;
    put(out, &mut at, &[0, 0])?;
    // Frame: CRYPTO at `offset`, then padding to 1200 bytes in all.
    let mut plain = [0u8; 1400];
    let mut p = 0;
    plain[p] = 0x06;
    p += 1;
    if offset >= 1 << 14 {
        return None;
    }
    plain[p..p + 2].copy_from_slice(&(0x4000 | offset).to_be_bytes());
    p += 2;
    let l = crypto.len();
    if l >= 1 << 14 || p + 2 + l > plain.len() {
        return None;
    }
    plain[p..p + 2].copy_from_slice(&(0x4000 | l as u16).to_be_bytes());
    p += 2;
    plain[p..p + l].copy_from_slice(crypto);
    p += l;
    let header_len = at + 2 + pn_len;
    let total = (header_len + p + 16).max(1200);
    let plen = total - header_len - 16;
    let length = pn_len + plen + 16;
    put(out, &mut at, &(0x4000 | length as u16).to_be_bytes())?;
    let pn_at = at;
    put(out, &mut at, &[0, 0])?;
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &keys.key).ok()?);
    let (header, rest) = out.split_at_mut(header_len);
    let body = rest.get_mut(..plen + 16)?;
    body[..plen].copy_from_slice(&plain[..plen]);
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(keys.iv),
            aead::Aad::from(&*header),
            &mut body[..plen],
        )
        .ok()?;
    body[plen..].copy_from_slice(tag.as_ref());
    let hp = quic::HeaderProtectionKey::new(&quic::AES_128, &keys.hp).ok()?;
    let mask = hp.new_mask(&body[4 - pn_len..20 - pn_len]).ok()?;
    header[0] ^= mask[0] & 0x0f;
    for i in 0..pn_len {
        header[pn_at + i] ^= mask[1 + i];
    }
    Some(header_len + plen + 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A.1 and RFC 9369 Appendix A.1: keys for DCID 0x8394c8f03e515708.
    #[test]
    fn initial_keys_match_the_rfcs() {
        let dcid = hex("8394c8f03e515708");
        let k = client_initial_keys(flavor(V1).unwrap(), &dcid);
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
        let k = client_initial_keys(flavor(V2).unwrap(), &dcid);
        assert_eq!(k.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(k.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(k.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    }

    fn frames(p: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, QuicError> {
        let mut v = Vec::new();
        crypto_frames(p, |o, d| v.push((o, d.to_vec())))?;
        Ok(v)
    }

    #[test]
    fn crypto_frames_are_listed_with_their_offsets() {
        // CRYPTO [5..9] before CRYPTO [0..5], padding between and after.
        let mut p = vec![0x06, 5, 4, b'f', b'g', b'h', b'i', 0, 0, 0, 0x01];
        p.extend_from_slice(&[0x06, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0]);
        assert_eq!(
            frames(&p).unwrap(),
            vec![(5, b"fghi".to_vec()), (0, b"abcde".to_vec())]
        );
        assert!(frames(&[0x06, 0, 9, 1]).is_err(), "a frame past the end");
    }

    #[test]
    fn every_version_seals_then_opens_and_tamper_is_refused() {
        let hello = b"\x01\x00\x00\x05hello";
        for v in [V1, V2, 0xff00_001d, 0xff00_0017, 0xff00_0016, MVFST_EXP] {
            let mut pkt = [0u8; 1500];
            let n = seal_initial(v, &[1, 2, 3, 4, 5, 6, 7, 8], 0, hello, &mut pkt).unwrap();
            assert_eq!(n, 1200);
            let mut scratch = [0u8; 1500];
            let (p, rest) = next_packet(&pkt[..n]).unwrap();
            assert_eq!((p.kind, p.version, rest.len()), (Kind::Initial, v, 0));
            let plain = open_initial(&p, &mut scratch).unwrap();
            assert_eq!(frames(plain).unwrap(), vec![(0, hello.to_vec())]);
            pkt[100] ^= 1;
            let (p, _) = next_packet(&pkt[..n]).unwrap();
            assert_eq!(
                open_initial(&p, &mut scratch).err(),
                Some(QuicError::Decrypt)
            );
            for cut in [0, 5, 30, 60, 1199] {
                assert!(next_packet(&pkt[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn gquic_plaintext_hellos_name_their_server() {
        let mut d = vec![0x0d, 1, 2, 3, 4, 5, 6, 7, 8, b'Q', b'0', b'4', b'3', 1];
        d.extend_from_slice(b"CHLO");
        d.extend_from_slice(&[2, 0, 0, 0]);
        d.extend_from_slice(b"PAD\0");
        d.extend_from_slice(&3u32.to_le_bytes());
        d.extend_from_slice(b"SNI\0");
        d.extend_from_slice(&(3 + 11u32).to_le_bytes());
        d.extend_from_slice(b"---www.example");
        assert_eq!(gquic_chlo_sni(&d), Some("www.example"));
        let n = d.len();
        d[n - 15] = 0xff; // the SNI's end offset now points past the message
        assert_eq!(gquic_chlo_sni(&d), None);
        assert_eq!(gquic_chlo_sni(b"CHLO"), None);
    }

    #[test]
    fn coalesced_packets_are_split_and_odd_versions_named() {
        let mut d = [0u8; 3000];
        let n = seal_initial(V1, &[9; 8], 0, b"\x01\x00\x00\x01x", &mut d).unwrap();
        // A 0-RTT packet behind it: type 1, same header shape without a token.
        let z = [0xd0, 0, 0, 0, 1, 1, 9, 0, 0x40, 4, 1, 2, 3, 4];
        d[n..n + z.len()].copy_from_slice(&z);
        let (a, rest) = next_packet(&d[..n + z.len()]).unwrap();
        assert_eq!(a.kind, Kind::Initial);
        let (b, rest) = next_packet(rest).unwrap();
        assert_eq!((b.kind, rest.len()), (Kind::ZeroRtt, 0));
        let vn = [0x80, 0, 0, 0, 0, 1, 7, 1, 2, 0, 0, 0, 1];
        assert_eq!(next_packet(&vn).unwrap().0.kind, Kind::VersionNegotiation);
        let q = [0xc0, b'Q', b'0', b'5', b'0', 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        assert_eq!(next_packet(&q).unwrap().0.kind, Kind::Unknown);
    }
}
