//! mimamori's data path, free of DPDK: packet views, the flow table, the stateful firewall,
//! the stage interface and its inspectors (web filter, signatures), events, and the
//! traffic synthesizer. Everything here runs on plain
//! byte buffers, so it is tested and benchmarked without root or hugepages.
#![forbid(unsafe_code)]

pub mod app;
pub mod classify;
pub mod defrag;
pub mod error;
pub mod event;
pub mod firewall;
pub mod flow;
pub mod fragment;
pub mod inspect;
pub mod packet;
pub mod policy;
pub mod reject;
pub mod stage;
pub mod stream;
pub mod synth;
pub mod web;
pub mod wire;

pub use classify::{Classifier, DropReason, ForwardReason, Verdict};
pub use error::ParseError;
pub use flow::Side;
pub use packet::{PacketMeta, parse};
pub use policy::Policy;
