//! Reading the SNI of a QUIC v1 client Initial (RFC 9000 17.2.2, RFC 9001 5): the Initial
//! keys come from the Destination Connection ID and a published salt, so a gateway can
//! remove header protection, decrypt the payload and read the ClientHello in its CRYPTO
//! frames. Works in a caller's scratch buffer; allocates nothing.

use ring::aead::{self, quic};
use ring::hkdf;

const V1: u32 = 1;
/// RFC 9001 5.2.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuicError {
    #[error("not a QUIC long-header Initial")]
    NotInitial,
    #[error("QUIC version {0:#x} is not read (v1 only)")]
    Version(u32),
    #[error("packet cut short")]
    Short,
    #[error("the payload did not decrypt")]
    Decrypt,
    #[error("malformed frames")]
    Frames,
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

/// Derives the client Initial keys from the Destination Connection ID (RFC 9001 5.2).
pub fn client_initial_keys(dcid: &[u8]) -> InitialKeys {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &SALT_V1).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret);
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let mut k = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, b"quic key", &mut k.key);
    expand_label(&client, b"quic iv", &mut k.iv);
    expand_label(&client, b"quic hp", &mut k.hp);
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

/// True for a datagram that starts with a QUIC long-header Initial of any version.
pub fn looks_like_initial(d: &[u8]) -> bool {
    d.len() >= 7 && d[0] & 0xc0 == 0xc0 && (d[0] >> 4) & 3 == 0
}

/// Decrypts the first packet of `datagram` (a client Initial) into `scratch` and copies the
/// contiguous CRYPTO data from offset 0 into `crypto`. Returns how many CRYPTO bytes are
/// there (the start of the ClientHello).
pub fn initial_crypto(
    datagram: &[u8],
    scratch: &mut [u8],
    crypto: &mut [u8],
) -> Result<usize, QuicError> {
    if !looks_like_initial(datagram) {
        return Err(QuicError::NotInitial);
    }
    let version = u32::from_be_bytes([datagram[1], datagram[2], datagram[3], datagram[4]]);
    if version != V1 {
        return Err(QuicError::Version(version));
    }
    let mut at = 5;
    let dcid_len = usize::from(datagram[at]);
    if dcid_len > 20 {
        return Err(QuicError::NotInitial);
    }
    let dcid = datagram
        .get(at + 1..at + 1 + dcid_len)
        .ok_or(QuicError::Short)?;
    at += 1 + dcid_len;
    let scid_len = usize::from(*datagram.get(at).ok_or(QuicError::Short)?);
    at += 1 + scid_len;
    let token_len = varint(datagram, &mut at).ok_or(QuicError::Short)? as usize;
    at = at.checked_add(token_len).ok_or(QuicError::Short)?;
    let length = varint(datagram, &mut at).ok_or(QuicError::Short)? as usize;
    let pn_at = at;
    let end = pn_at.checked_add(length).ok_or(QuicError::Short)?;
    let packet = datagram.get(..end).ok_or(QuicError::Short)?;
    if length < 20 || packet.len() > scratch.len() {
        return Err(QuicError::Short);
    }
    let keys = client_initial_keys(dcid);
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
    crypto_frames(plain, crypto)
}

/// Gathers CRYPTO frame data by offset; returns the length of the run starting at 0.
fn crypto_frames(plain: &[u8], crypto: &mut [u8]) -> Result<usize, QuicError> {
    // Frames may come in any order (some clients shuffle them); track filled ranges
    // coarsely: the contiguous prefix is extended until no frame adds to it.
    let mut filled = 0usize;
    for _ in 0..16 {
        let before = filled;
        // A frame starting past the filled prefix: another pass may use it.
        let mut gap = false;
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
                    let off = varint(plain, &mut at).ok_or(QuicError::Frames)? as usize;
                    let len = varint(plain, &mut at).ok_or(QuicError::Frames)? as usize;
                    let data = plain.get(at..at + len).ok_or(QuicError::Frames)?;
                    at += len;
                    let end = off.saturating_add(len).min(crypto.len());
                    if off <= filled && end > filled {
                        crypto[filled..end].copy_from_slice(&data[filled - off..end - off]);
                        filled = end;
                    } else if off > filled {
                        gap = true;
                    }
                }
                0x1c => {
                    // CONNECTION_CLOSE: code, frame type, reason
                    for _ in 0..2 {
                        varint(plain, &mut at).ok_or(QuicError::Frames)?;
                    }
                    let n = varint(plain, &mut at).ok_or(QuicError::Frames)? as usize;
                    at = at.saturating_add(n);
                }
                _ => break, // not allowed in an Initial; what we have is what we use
            }
        }
        if filled == before || !gap {
            break;
        }
    }
    Ok(filled)
}

/// Builds a protected client Initial around `crypto` (tests and the synthesizer).
pub fn seal_initial(dcid: &[u8], crypto: &[u8], out: &mut [u8]) -> Option<usize> {
    let keys = client_initial_keys(dcid);
    let pn_len = 2;
    // Header: flags, version, dcid, scid (0), token (0), length (2-byte varint), pn
    let mut at = 0;
    fn put(out: &mut [u8], at: &mut usize, b: &[u8]) -> Option<()> {
        out.get_mut(*at..*at + b.len())?.copy_from_slice(b);
        *at += b.len();
        Some(())
    }
    put(out, &mut at, &[0xc0 | (pn_len as u8 - 1)])?;
    put(out, &mut at, &V1.to_be_bytes())?;
    put(out, &mut at, &[dcid.len() as u8])?;
    put(out, &mut at, dcid)?;
    put(out, &mut at, &[0, 0])?;
    // Frame: CRYPTO offset 0, then padding to 1200 bytes in all.
    let mut plain = [0u8; 1400];
    let mut p = 0;
    plain[p] = 0x06;
    p += 1;
    plain[p] = 0;
    p += 1;
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

    /// RFC 9001 Appendix A.1: keys for DCID 0x8394c8f03e515708.
    #[test]
    fn rfc9001_initial_keys() {
        let k = client_initial_keys(&hex("8394c8f03e515708"));
        assert_eq!(k.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(k.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(k.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    #[test]
    fn crypto_frames_out_of_order_are_joined() {
        // CRYPTO [5..9] before CRYPTO [0..5], padding between and after.
        let mut p = vec![0x06, 5, 4, b'f', b'g', b'h', b'i', 0, 0, 0, 0x01];
        p.extend_from_slice(&[0x06, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0]);
        let mut out = [0u8; 32];
        let n = crypto_frames(&p, &mut out).unwrap();
        assert_eq!(&out[..n], b"abcdefghi");
        assert!(
            crypto_frames(&[0x06, 0, 9, 1], &mut out).is_err(),
            "a frame running past the end"
        );
    }

    #[test]
    fn seal_then_open_round_trips_and_tamper_is_refused() {
        let hello = b"\x01\x00\x00\x05hello";
        let mut pkt = [0u8; 1500];
        let n = seal_initial(&[1, 2, 3, 4, 5, 6, 7, 8], hello, &mut pkt).unwrap();
        assert_eq!(n, 1200);
        let (mut scratch, mut crypto) = ([0u8; 1500], [0u8; 256]);
        let got = initial_crypto(&pkt[..n], &mut scratch, &mut crypto).unwrap();
        assert_eq!(&crypto[..got], hello);
        pkt[100] ^= 1;
        assert_eq!(
            initial_crypto(&pkt[..n], &mut scratch, &mut crypto),
            Err(QuicError::Decrypt)
        );
        for cut in [0, 5, 30, 60, 1199] {
            assert!(initial_crypto(&pkt[..cut], &mut scratch, &mut crypto).is_err());
        }
    }
}
