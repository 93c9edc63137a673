//! Raw bindings to the system DPDK (22.11 LTS from Debian 12's apt), generated at build
//! time from a narrow allowlist. Static inline fast-path functions (`rte_eth_rx_burst`,
//! `rte_pktmbuf_alloc`, `rte_ring_*_burst`, …) are reached through C wrappers that bindgen
//! writes (`wrap_static_fns`, suffix `__extern`); `rte_errno` and `rte_pktmbuf_mtod` go
//! through `glue.c`. The safe layer is `mimamori_gateway::dpdk`.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
