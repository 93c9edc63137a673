//! Pattern bundles: every way a bundle can be wrong is refused with its reason, and a good
//! one goes through build → sign → verify → inspect.

use ed25519_dalek::{Signer, SigningKey};
use mimamori_signatures::bundle::container::{self, RawSignature};
use mimamori_signatures::bundle::keys::{self, KeyError, TrustedKeys};
use mimamori_signatures::bundle::{
    self, BuildSpec, BundleError, GatewayVersion, KeyId, Kind, Limits, Verifier,
};
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trust(keys: &[&SigningKey]) -> Verifier {
    let mut v =
        Verifier::new(TrustedKeys::new(keys.iter().map(|k| k.verifying_key()).collect()).unwrap());
    v.gateway = Some(GatewayVersion(0, 1, 0));
    v
}

fn parts() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "emerging-test.rules".into(),
            b"alert tcp any any -> any 80 (msg:\"t\"; content:\"evil\"; sid:1; rev:1;)\n".to_vec(),
        ),
        (
            "classification.config".into(),
            b"config classification: trojan-activity,A Network Trojan was detected,1\n".to_vec(),
        ),
    ]
}

fn spec(version: u64) -> BuildSpec {
    BuildSpec {
        kind: Kind::Rules,
        version,
        published: 1_764_633_600,
        min_gateway: GatewayVersion(0, 1, 0),
    }
}

fn signed(version: u64, k: &SigningKey) -> Vec<u8> {
    let b = bundle::build(&spec(version), &parts(), &Limits::default()).unwrap();
    bundle::sign(&b, k, &Limits::default()).unwrap()
}

/// Signs arbitrary manifest bytes over arbitrary parts: what a compromised or buggy desk
/// tool could produce (`bundle::sign` itself refuses to sign a bundle that does not match).
fn raw_signed(manifest: &str, parts: &[(&str, &[u8])], k: &SigningKey) -> Vec<u8> {
    let mut msg = bundle::SIGNING_CONTEXT.to_vec();
    msg.extend_from_slice(manifest.as_bytes());
    let sig = RawSignature {
        public_key: k.verifying_key().to_bytes(),
        signature: k.sign(&msg).to_bytes(),
    };
    container::encode(manifest.as_bytes(), &[sig], parts).unwrap()
}

fn manifest_json(kind: &str, version: &str, parts: &[(&str, &[u8])]) -> String {
    let entries: Vec<String> = parts
        .iter()
        .map(|(n, d)| {
            format!(
                r#"{{"name":"{n}","size":{},"sha256":"{}"}}"#,
                d.len(),
                bundle::hex(&<sha2::Sha256 as sha2::Digest>::digest(d))
            )
        })
        .collect();
    format!(
        r#"{{"format":1,"kind":{kind},"version":{version},"published":1764633600,"min_gateway":"0.1.0","parts":[{}]}}"#,
        entries.join(",")
    )
}

/// Offset of the manifest's first byte, and its length.
fn manifest_span(b: &[u8]) -> (usize, usize) {
    (
        16,
        u32::from_le_bytes(b[12..16].try_into().unwrap()) as usize,
    )
}

#[test]
fn round_trip_build_sign_verify_inspect() {
    let k = key(1);
    let b = signed(7, &k);
    let v = trust(&[&k]);
    let ok = v.verify(&b).expect("verifies");
    assert_eq!(ok.manifest.kind, Kind::Rules);
    assert_eq!(ok.manifest.version, 7);
    assert_eq!(ok.manifest.published, 1_764_633_600);
    assert_eq!(ok.signer, KeyId::of(k.verifying_key().as_bytes()));
    let want = parts();
    assert_eq!(ok.parts.len(), 2);
    for ((n, d), (wn, wd)) in ok.parts.iter().zip(&want) {
        assert_eq!(n, wn);
        assert_eq!(*d, wd.as_slice());
    }
    let i = bundle::inspect(&b, &Limits::default()).unwrap();
    assert_eq!(i.parts_problem, None);
    assert_eq!(i.published_utc, "2025-12-02T00:00:00Z");
    assert_eq!(i.signatures.len(), 1);
    let j = serde_json::to_value(&i).unwrap();
    assert_eq!(j["manifest"]["kind"], "rules");
    assert_eq!(j["manifest"]["version"], 7);
    assert_eq!(j["manifest"]["min_gateway"], "0.1.0");
    assert_eq!(j["manifest"]["parts"][0]["name"], "emerging-test.rules");
    assert_eq!(
        j["signatures"][0]["public_key"],
        keys::public_to_text(&k.verifying_key())
    );
    // Building is deterministic: same inputs, same bytes.
    assert_eq!(b, signed(7, &k));
}

#[test]
fn tampered_manifest_byte_is_refused_by_the_signature() {
    let k = key(1);
    let mut b = signed(7, &k);
    let (at, len) = manifest_span(&b);
    // "version": 7 → 8: still valid JSON, a different claim.
    let m = std::str::from_utf8(&b[at..at + len]).unwrap();
    let pos = at + m.find("\"version\": 7").unwrap() + "\"version\": ".len();
    b[pos] = b'8';
    let e = trust(&[&k]).verify(&b).unwrap_err();
    assert_eq!(
        e,
        BundleError::BadSignature(KeyId::of(k.verifying_key().as_bytes()))
    );
    assert!(e.to_string().contains("does not verify"), "{e}");
}

#[test]
fn tampered_part_byte_is_refused_by_its_hash() {
    let k = key(1);
    let mut b = signed(7, &k);
    let pos = b.windows(4).position(|w| w == b"evil").unwrap();
    b[pos] = b'E';
    let e = trust(&[&k]).check("test.mmb", &b).unwrap_err();
    assert!(
        matches!(&e.error, BundleError::PartHash { part, .. } if part == "emerging-test.rules"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with(
            "bundle test.mmb (claims rules version 7): refused: part emerging-test.rules: SHA-256 "
        ),
        "{msg}"
    );
    assert!(msg.contains("altered or damaged"), "{msg}");
}

#[test]
fn wrong_key_is_refused_naming_both() {
    let (k1, k2) = (key(1), key(2));
    let e = trust(&[&k2]).verify(&signed(7, &k1)).unwrap_err();
    let (id1, id2) = (
        KeyId::of(k1.verifying_key().as_bytes()),
        KeyId::of(k2.verifying_key().as_bytes()),
    );
    assert_eq!(
        e,
        BundleError::UntrustedSigner {
            signers: format!("key {id1}"),
            trusted: format!("key {id2}"),
        }
    );
}

#[test]
fn a_signature_moved_to_another_key_is_refused() {
    // The signature of key 1 presented under key 2's public key.
    let (k1, k2) = (key(1), key(2));
    let mut b = signed(7, &k1);
    let (at, len) = manifest_span(&b);
    let sig_at = at + len + 1;
    b[sig_at..sig_at + 32].copy_from_slice(k2.verifying_key().as_bytes());
    let e = trust(&[&k2]).verify(&b).unwrap_err();
    assert_eq!(
        e,
        BundleError::BadSignature(KeyId::of(k2.verifying_key().as_bytes()))
    );
}

#[test]
fn rotation_second_key_accepted_and_dual_signatures() {
    let (old, new, other) = (key(1), key(2), key(3));
    let v = trust(&[&old, &new]);
    assert!(v.verify(&signed(7, &old)).is_ok());
    let b8 = signed(8, &new);
    let by_new = v.verify(&b8).unwrap();
    assert_eq!(by_new.signer, KeyId::of(new.verifying_key().as_bytes()));
    // During the rotation the desk signs with both; a box that already dropped the old key
    // and one that does not know the new one yet both accept.
    let both = bundle::sign(&signed(9, &old), &new, &Limits::default()).unwrap();
    assert_eq!(
        bundle::inspect(&both, &Limits::default())
            .unwrap()
            .signatures
            .len(),
        2
    );
    assert!(trust(&[&new]).verify(&both).is_ok());
    assert!(trust(&[&old]).verify(&both).is_ok());
    assert!(trust(&[&other]).verify(&both).is_err());
    // Signing again with the same key replaces its signature rather than adding one.
    let again = bundle::sign(&both, &new, &Limits::default()).unwrap();
    assert_eq!(again, both);
    // At most two keys trusted at once.
    assert_eq!(
        TrustedKeys::new(vec![
            old.verifying_key(),
            new.verifying_key(),
            other.verifying_key()
        ])
        .unwrap_err(),
        KeyError::TooMany { count: 3 }
    );
    assert_eq!(TrustedKeys::new(vec![]).unwrap_err(), KeyError::None);
}

#[test]
fn older_or_equal_version_refused_unless_forced() {
    assert_eq!(
        bundle::admit(Kind::Rules, Some(7), 7, false),
        Err(BundleError::NotNewer {
            kind: Kind::Rules,
            current: 7,
            offered: 7
        })
    );
    let e = bundle::admit(Kind::Rules, Some(7), 6, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "rules version 6 is not newer than the installed version 7 (a rollback must be forced)"
    );
    assert!(bundle::admit(Kind::Rules, Some(7), 6, true).is_ok());
    assert!(bundle::admit(Kind::Rules, Some(7), 8, false).is_ok());
    assert!(bundle::admit(Kind::Rules, None, 0, false).is_ok());
}

#[test]
fn every_truncation_is_refused() {
    let k = key(1);
    let b = signed(7, &k);
    let v = trust(&[&k]);
    for n in 0..b.len() {
        let e = v.verify(&b[..n]).unwrap_err();
        assert!(
            matches!(e, BundleError::Truncated { .. }),
            "cut at {n}: {e}"
        );
    }
    let e = v.verify(&b[..b.len() - 3]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the file ends inside part classification.config"),
        "{e}"
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let k = key(1);
    let mut b = signed(7, &k);
    b.extend_from_slice(b"xyz");
    assert_eq!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::TrailingBytes(3)
    );
}

#[test]
fn manifest_naming_a_missing_part_is_refused() {
    let k = key(1);
    let a: &[u8] = b"alert ip any any -> any any (sid:1;)\n";
    let c: &[u8] = b"more\n";
    let m = manifest_json("\"rules\"", "3", &[("a.rules", a), ("c.rules", c)]);
    let b = raw_signed(&m, &[("a.rules", a)], &k);
    let e = trust(&[&k]).check("x.mmb", &b).unwrap_err();
    assert_eq!(e.error, BundleError::MissingPart("c.rules".into()));
    assert_eq!(
        e.to_string(),
        "bundle x.mmb (claims rules version 3): refused: part c.rules: named in the manifest but missing from the file"
    );
}

#[test]
fn extra_part_is_refused() {
    let k = key(1);
    let a: &[u8] = b"alert ip any any -> any any (sid:1;)\n";
    let m = manifest_json("\"rules\"", "3", &[("a.rules", a)]);
    let b = raw_signed(&m, &[("a.rules", a), ("extra.rules", b"sneaky")], &k);
    assert_eq!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::ExtraPart("extra.rules".into())
    );
    // The same part twice in the file.
    let b = raw_signed(&m, &[("a.rules", a), ("a.rules", a)], &k);
    assert_eq!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::DuplicatePart("a.rules".into())
    );
}

#[test]
fn part_of_the_wrong_size_is_refused() {
    let k = key(1);
    let a: &[u8] = b"alert ip any any -> any any (sid:1;)\n";
    let m = manifest_json("\"rules\"", "3", &[("a.rules", a)]);
    let b = raw_signed(&m, &[("a.rules", &a[..10])], &k);
    assert_eq!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::PartSize {
            part: "a.rules".into(),
            manifest: a.len() as u64,
            actual: 10
        }
    );
}

#[test]
fn oversize_parts_and_bundles_are_refused() {
    let k = key(1);
    let small = Limits {
        max_bundle: 4096,
        max_manifest: 1024,
        max_parts: 2,
        max_part: 100,
    };
    let big = vec![b'x'; 101];
    // The builder refuses to make one.
    assert_eq!(
        bundle::build(&spec(1), &[("big.rules".into(), big.clone())], &small).unwrap_err(),
        BundleError::PartTooLarge {
            part: "big.rules".into(),
            size: 101,
            limit: 100
        }
    );
    // A box with small limits refuses one made elsewhere: from the container's size field.
    let b = signed_with(&[("big.rules", &big)], &k);
    let mut v = trust(&[&k]);
    v.limits = small.clone();
    assert_eq!(
        v.verify(&b).unwrap_err(),
        BundleError::PartTooLarge {
            part: "big.rules".into(),
            size: 101,
            limit: 100
        }
    );
    // A manifest claiming a huge part is refused before anything is compared.
    let m = manifest_json("\"rules\"", "1", &[("a.rules", b"x")])
        .replace("\"size\":1", "\"size\":18446744073709551615");
    let b = raw_signed(&m, &[("a.rules", b"x")], &k);
    assert!(matches!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::PartTooLarge { size: u64::MAX, .. }
    ));
    // Too many parts.
    let three: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("p{i}"), vec![1])).collect();
    assert_eq!(
        bundle::build(&spec(1), &three, &small).unwrap_err(),
        BundleError::TooManyParts { count: 3, limit: 2 }
    );
    // The whole file over the limit.
    let b = signed(1, &k);
    v.limits.max_bundle = 100;
    assert_eq!(
        v.verify(&b).unwrap_err(),
        BundleError::BundleTooLarge {
            size: b.len() as u64,
            limit: 100
        }
    );
    // A manifest length field over the limit.
    let mut b = signed(1, &k);
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        trust(&[&k]).verify(&b).unwrap_err(),
        BundleError::ManifestTooLarge { .. }
    ));
}

fn signed_with(parts: &[(&str, &[u8])], k: &SigningKey) -> Vec<u8> {
    raw_signed(&manifest_json("\"rules\"", "1", parts), parts, k)
}

#[test]
fn unsigned_is_refused() {
    let k = key(1);
    let b = bundle::build(&spec(1), &parts(), &Limits::default()).unwrap();
    assert_eq!(trust(&[&k]).verify(&b).unwrap_err(), BundleError::Unsigned);
}

#[test]
fn manifest_fields_are_checked_after_the_signature() {
    let k = key(1);
    let a: &[u8] = b"x";
    let v = trust(&[&k]);
    let check = |kind: &str, version: &str| {
        v.verify(&raw_signed(
            &manifest_json(kind, version, &[("a", a)]),
            &[("a", a)],
            &k,
        ))
        .unwrap_err()
    };
    assert_eq!(
        check("\"firmware\"", "1"),
        BundleError::UnknownKind("firmware".into())
    );
    assert_eq!(check("7", "1"), BundleError::UnknownKind("7".into()));
    assert_eq!(
        check("\"rules\"", "\"12\""),
        BundleError::BadVersion("\"12\"".into())
    );
    assert_eq!(
        check("\"rules\"", "-1"),
        BundleError::BadVersion("-1".into())
    );
    assert_eq!(
        check("\"rules\"", "1.5"),
        BundleError::BadVersion("1.5".into())
    );
    assert!(matches!(
        check("\"rules\"", "18446744073709551616"),
        BundleError::BadVersion(_)
    ));
    // An unknown field, a bad min_gateway, not JSON at all.
    let m = manifest_json("\"rules\"", "1", &[("a", a)])
        .replace("\"format\":1", "\"format\":1,\"priority\":9");
    assert!(
        matches!(v.verify(&raw_signed(&m, &[("a", a)], &k)).unwrap_err(), BundleError::ManifestSyntax(s) if s.contains("unknown field \"priority\""))
    );
    let m = manifest_json("\"rules\"", "1", &[("a", a)]).replace("\"0.1.0\"", "\"one\"");
    assert_eq!(
        v.verify(&raw_signed(&m, &[("a", a)], &k)).unwrap_err(),
        BundleError::BadMinGateway("one".into())
    );
    let m = manifest_json("\"rules\"", "1", &[("a", a)]).replace("\"format\":1", "\"format\":2");
    assert_eq!(
        v.verify(&raw_signed(&m, &[("a", a)], &k)).unwrap_err(),
        BundleError::ManifestFormat("2".into())
    );
    assert!(matches!(
        v.verify(&raw_signed("{not json", &[("a", a)], &k))
            .unwrap_err(),
        BundleError::ManifestSyntax(_)
    ));
    // No part at all.
    let m = manifest_json("\"rules\"", "1", &[]);
    assert_eq!(
        v.verify(&raw_signed(&m, &[], &k)).unwrap_err(),
        BundleError::NoParts
    );
}

#[test]
fn part_names_must_be_plain_file_names() {
    let k = key(1);
    for bad in ["../etc/passwd", ".hidden", "a/b", "", "sp ace", "é"] {
        assert!(
            matches!(
                bundle::build(&spec(1), &[(bad.to_string(), vec![1])], &Limits::default()),
                Err(BundleError::BadPartName { .. })
            ),
            "{bad:?}"
        );
        let parts: &[(&str, &[u8])] = &[(bad, b"x")];
        let e = trust(&[&k]).verify(&signed_with(parts, &k)).unwrap_err();
        assert!(matches!(e, BundleError::BadPartName { .. }), "{bad:?}: {e}");
    }
}

#[test]
fn a_bundle_for_a_newer_gateway_is_refused() {
    let k = key(1);
    let mut s = spec(1);
    s.min_gateway = GatewayVersion(0, 2, 0);
    let b = bundle::build(&s, &parts(), &Limits::default()).unwrap();
    let b = bundle::sign(&b, &k, &Limits::default()).unwrap();
    let e = trust(&[&k]).verify(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the bundle needs gateway 0.2.0 or later; this gateway is 0.1.0"
    );
}

#[test]
fn sign_refuses_a_bundle_that_does_not_match() {
    let k = key(1);
    let mut b = bundle::build(&spec(1), &parts(), &Limits::default()).unwrap();
    let pos = b.windows(4).position(|w| w == b"evil").unwrap();
    b[pos] = b'E';
    assert!(matches!(
        bundle::sign(&b, &k, &Limits::default()).unwrap_err(),
        BundleError::PartHash { .. }
    ));
}

#[test]
fn key_text_forms() {
    let k = keys::generate().unwrap();
    let pt = keys::public_to_text(&k.verifying_key());
    assert!(pt.starts_with("mimamori-ed25519-pub:") && pt.len() == 21 + 64);
    assert_eq!(
        keys::public_from_text(&format!("  {pt}\n")).unwrap(),
        k.verifying_key()
    );
    let st = keys::secret_to_text(&k);
    assert_eq!(
        keys::secret_from_text(&st).unwrap().to_bytes(),
        k.to_bytes()
    );
    assert!(matches!(
        keys::public_from_text(&st),
        Err(KeyError::Form { .. })
    ));
    assert!(matches!(
        keys::secret_from_text(&pt),
        Err(KeyError::Form { .. })
    ));
    assert_eq!(
        keys::public_from_text("mimamori-ed25519-pub:abcd"),
        Err(KeyError::Hex("public"))
    );
    // The identity point is a weak key.
    let mut ident = [0u8; 32];
    ident[0] = 1;
    assert_eq!(
        keys::public_from_text(&format!("mimamori-ed25519-pub:{}", bundle::hex(&ident))),
        Err(KeyError::BadPoint)
    );
    assert_ne!(keys::generate().unwrap().to_bytes(), k.to_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any one byte changed anywhere is refused, and nothing panics.
    #[test]
    fn any_single_byte_change_is_refused(pos in any::<prop::sample::Index>(), x in 1u8..=255) {
        let k = key(1);
        let mut b = signed(7, &k);
        let i = pos.index(b.len());
        b[i] ^= x;
        prop_assert!(trust(&[&k]).verify(&b).is_err(), "byte {} ^ {:#x} accepted", i, x);
    }

    /// Arbitrary bytes after a valid header never panic.
    #[test]
    fn garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..400)) {
        let k = key(1);
        let mut b = b"MMBUNDLE\x01\x00\x00\x00".to_vec();
        b.extend_from_slice(&tail);
        let _ = trust(&[&k]).verify(&b);
        let _ = bundle::inspect(&b, &Limits::default());
        let _ = bundle::sign(&b, &k, &Limits::default());
    }
}
