//! The desk's own certificate authority: it signs the desk's server certificate and one
//! client certificate per enrolled box (the box sends a signing request for a key it keeps;
//! the desk decides the name and the validity).

use anyhow::{Context, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

pub const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";

/// Box certificates live this long; a box re-enrols (new code) after.
pub const BOX_CERT_DAYS: i64 = 397;

pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

/// A signed box certificate.
pub struct Issued {
    pub cert_pem: String,
    /// Lower-case hex, as the TLS layer reads it back.
    pub serial: String,
    pub not_after: i64,
}

/// A box identity is a short name: lower-case letters, digits, `-` and `_`.
pub fn valid_box_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn random_serial() -> anyhow::Result<(SerialNumber, String)> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow!("no randomness: {e}"))?;
    b[0] &= 0x7f; // a positive INTEGER without a leading zero byte
    b[0] |= 0x01;
    let hex = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok((SerialNumber::from_slice(&b), hex))
}

fn at(unix: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| anyhow!("time {unix}: {e}"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", path.display()))
}

impl Ca {
    /// Creates a new CA and the desk's server certificate for `names` (DNS names or IP
    /// addresses) in `dir`. Refuses to overwrite an existing CA.
    pub fn init(dir: &Path, names: &[String], now: i64) -> anyhow::Result<Ca> {
        if dir.join(CA_KEY).exists() {
            bail!("{}: a CA already exists here", dir.join(CA_KEY).display());
        }
        if names.is_empty() {
            bail!("the desk's server certificate needs at least one name (--name)");
        }
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "mimamori desk CA");
        dn.push(DnType::OrganizationName, "mimamori Security Support Desk");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = at(now - 3600)?;
        p.not_after = at(now + 20 * 365 * 86_400)?;
        p.serial_number = Some(random_serial()?.0);
        let cert = p.self_signed(&key)?;
        let ca = Ca {
            dir: dir.to_path_buf(),
            cert_pem: cert.pem(),
            key,
        };
        let (server_pem, server_key) = ca.server_certificate(names, now)?;
        write_private(&dir.join(CA_KEY), &ca.key.serialize_pem())?;
        std::fs::write(dir.join(CA_CERT), &ca.cert_pem)?;
        write_private(&dir.join(SERVER_KEY), &server_key)?;
        std::fs::write(dir.join(SERVER_CERT), server_pem)?;
        Ok(ca)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Ca> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).with_context(|| {
                format!(
                    "{}: cannot read (run `mimamori-desk ca init`)",
                    dir.join(f).display()
                )
            })
        };
        let cert_pem = read(CA_CERT)?;
        let key = KeyPair::from_pem(&read(CA_KEY)?)
            .with_context(|| format!("{}: not a private key", dir.join(CA_KEY).display()))?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_pem,
            key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    fn issuer(&self) -> anyhow::Result<Issuer<'_, &KeyPair>> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).context("the CA certificate")
    }

    fn server_certificate(&self, names: &[String], now: i64) -> anyhow::Result<(String, String)> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names[0].as_str());
        p.distinguished_name = dn;
        p.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = at(now - 3600)?;
        p.not_after = at(now + 825 * 86_400)?;
        p.serial_number = Some(random_serial()?.0);
        let cert = p.signed_by(&key, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a box's request: the subject is `box_id` whatever the request asked for,
    /// valid from `from` to `until` (Unix seconds), for client authentication only.
    pub fn issue_box(
        &self,
        csr_pem: &str,
        box_id: &str,
        from: i64,
        until: i64,
    ) -> anyhow::Result<Issued> {
        if !valid_box_id(box_id) {
            bail!("box id {box_id:?}: use lower-case letters, digits, '-' and '_' (at most 64)");
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| anyhow!("csr_pem: not a valid signed certificate request: {e}"))?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, box_id);
        dn.push(DnType::OrganizationalUnitName, "mimamori box");
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = at(from)?;
        p.not_after = at(until)?;
        let (serial, hex) = random_serial()?;
        p.serial_number = Some(serial);
        let cert = p.signed_by(&csr.public_key, &self.issuer()?)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            serial: hex,
            not_after: until,
        })
    }
}

/// A key and a signing request for it, as a box makes them (tests and the load generator;
/// the control plane makes its own the same way).
pub fn key_and_request(box_id: &str) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, box_id);
    p.distinguished_name = dn;
    let csr = p.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_certificate_names_the_box_not_what_it_asked_for() {
        let dir = std::env::temp_dir().join(format!("desk-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = Ca::init(
            &dir,
            &["desk.test".into(), "127.0.0.1".into()],
            1_800_000_000,
        )
        .unwrap();
        assert!(
            Ca::init(&dir, &["desk.test".into()], 0).is_err(),
            "no overwrite"
        );
        let (_key, csr) = key_and_request("someone-else").unwrap();
        let issued = ca
            .issue_box(&csr, "box-01", 1_800_000_000, 1_800_000_000 + 86_400)
            .unwrap();
        use rustls::pki_types::pem::PemObject;
        let der =
            rustls::pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        let peer = crate::tls::peer_of(&der).unwrap();
        assert_eq!(peer.box_id, "box-01");
        assert_eq!(peer.serial, issued.serial);
        assert!(ca.issue_box("garbage", "box-01", 0, 1).is_err());
        assert!(ca.issue_box(&csr, "Box 01", 0, 1).is_err());
        let again = Ca::load(&dir).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
