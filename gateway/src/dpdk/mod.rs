//! The safe runtime over `dpdk-sys`: EAL, mempools, owned mbufs, ports, rings, lcores.
//!
//! This module tree is the only place in the project with `unsafe`. Every block says why
//! it is sound. Everything above it (the dataplane) is safe Rust.

mod eal;
mod mbuf;
mod port;
mod ring;

pub use eal::{Eal, LcoreId, launch, wait_lcore, worker_lcores};
pub use mbuf::{Burst, Mbuf, Mempool};
pub use port::{Port, PortStats};
pub use ring::Ring;

use std::ffi::CStr;

/// Frames per RX/TX burst.
pub const BURST: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("DPDK EAL initialisation failed: {0}")]
    Eal(String),
    #[error("DPDK EAL was already initialised in this process")]
    AlreadyInitialised,
    #[error("{what}: {reason}")]
    Call { what: String, reason: String },
}

/// DPDK's text for the current `rte_errno`.
pub(crate) fn last_error() -> String {
    // SAFETY: rte_errno is thread-local; rte_strerror returns a pointer to a static or
    // thread-local NUL-terminated string that stays valid until the next call here.
    unsafe {
        let code = dpdk_sys::mimamori_rte_errno();
        let s = dpdk_sys::rte_strerror(code);
        if s.is_null() {
            format!("error {code}")
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

/// Text for a negative errno returned directly by a DPDK call.
pub(crate) fn errno_text(ret: i32) -> String {
    // SAFETY: as in `last_error`.
    unsafe {
        let s = dpdk_sys::rte_strerror(-ret);
        if s.is_null() {
            format!("error {ret}")
        } else {
            CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

/// TSC cycles since some point in the past, and their frequency.
pub fn tsc() -> u64 {
    // SAFETY: reads the time-stamp counter; no memory is touched.
    unsafe { dpdk_sys::rte_rdtsc() }
}

pub fn tsc_hz() -> u64 {
    // SAFETY: returns a value computed at EAL init; no memory is touched.
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
