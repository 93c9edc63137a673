//! The gateway process: the live runtime (DPDK, issue #3) and the offline paths that run the
//! very same stage functions: pcap replay, the synthesizer CLI, the macro bench.
#![deny(unsafe_code)]

pub mod bench;
pub mod capture;
pub mod conformance;
pub mod dataplane;
#[allow(unsafe_code)]
pub mod dpdk;
pub mod eve;
pub mod replay;
#[allow(unsafe_code)]
pub mod webfilter;
