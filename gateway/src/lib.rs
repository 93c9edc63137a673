//! The gateway process: the live runtime (DPDK, behind the default `dpdk` feature) and the
//! offline paths that run the very same stage functions: pcap replay, the conformance
//! runner, the synthesizer CLI, the macro bench. Without the feature everything but
//! `run`, `apply` and `stats` builds and tests on a machine without libdpdk.
#![deny(unsafe_code)]

pub mod bench;
pub mod capture;
pub mod conformance;
#[cfg(feature = "dpdk")]
pub mod dataplane;
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
pub mod eve;
pub mod patterns;
pub mod replay;
pub mod sni_recall;
pub mod spool;
pub mod startup;
pub mod uplink;
#[allow(unsafe_code)]
pub mod webfilter;
