//! The boxes' listener: TLS 1.2/1.3 where the box shows a client certificate signed by the
//! desk's CA (only enrolment may come without one), then HTTP/1.1 or HTTP/2 into the
//! router with the peer's identity as a request extension.

use crate::ca::{self, Ca};
use anyhow::{Context, anyhow};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    pub box_id: String,
    /// Lower-case hex.
    pub serial: String,
}

/// The connection's client certificate, when it showed one the CA signed.
#[derive(Clone, Debug)]
pub struct Peer(pub Option<PeerCert>);

#[derive(Default)]
pub struct TlsCounters {
    pub accepted: AtomicU64,
    /// Handshakes that failed: no trust in the certificate, expired, not TLS, too slow.
    pub refused: AtomicU64,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the box name (CN) and serial from a certificate the verifier accepted.
pub fn peer_of(der: &CertificateDer<'_>) -> Option<PeerCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let box_id = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    if !ca::valid_box_id(&box_id) {
        return None;
    }
    let serial = cert
        .raw_serial()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(PeerCert { box_id, serial })
}

pub fn server_config(ca: &Ca) -> anyhow::Result<Arc<ServerConfig>> {
    let dir = ca.dir();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        roots
            .add(c.context("the CA certificate")?)
            .context("the CA certificate")?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| anyhow!("client verifier: {e}"))?;
    let cert_path = dir.join(ca::SERVER_CERT);
    let key_path = dir.join(ca::SERVER_KEY);
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("{}: cannot read", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("{}: not a PEM private key", key_path.display()))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("the server certificate and key")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Accepts connections until the listener fails; each one is served on its own task.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    counters: Arc<TlsCounters>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            // Out of descriptors and the like: wait instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(t)) => t,
                    _ => {
                        counters.refused.fetch_add(1, Relaxed);
                        return;
                    }
                };
            counters.accepted.fetch_add(1, Relaxed);
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(peer_of);
            let svc = router.layer(Extension(Peer(peer)));
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}
