//! Shared inputs for the criterion benches (`cargo bench -p mimamori-benches`). The
//! whole-path macro bench is `mimamori-gw bench`.

use mimamori_pipelines::synth::{self, Endpoint};
use mimamori_pipelines::wire::emit::Transport;
use mimamori_pipelines::wire::tcp::flags::ACK;

/// A minimal TCP ACK (60 bytes) between LAN client `n` and a server.
pub fn tcp_ack(n: u8, v6: bool) -> Vec<u8> {
    let c = Endpoint::client(n, v6, 40000);
    let s = Endpoint::server(7, v6, 443);
    synth::frame(
        &c,
        &s,
        0,
        &Transport::Tcp {
            src_port: 40000,
            dst_port: 443,
            seq: 1,
            ack: 1,
            flags: ACK,
            window: 100,
            options: &[],
        },
        b"",
    )
}

/// The synthesizer's office mix, frames only.
pub fn office_mix(sessions: usize) -> Vec<Vec<u8>> {
    synth::generate(&synth::Config {
        sessions,
        ..synth::Config::default()
    })
    .into_iter()
    .map(|p| p.frame)
    .collect()
}
