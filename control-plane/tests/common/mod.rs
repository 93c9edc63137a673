//! What the control plane's integration tests share.

use mimamori_control_plane::server;
use std::net::SocketAddr;
use std::time::Duration;

/// Serves `opts` on a runtime of its own thread, as `mimamori-cp serve` does; answers the
/// API's address once it listens.
pub fn serve(opts: &server::Options) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let o = opts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (running, serve) = server::start(&o).await.unwrap();
            tx.send(running.addr).unwrap();
            serve.await.unwrap();
        });
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap()
}
