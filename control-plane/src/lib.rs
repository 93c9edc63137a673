//! The control plane (`mimamori-cp`): REST API, policy compile and push, event store.
//!
//! Not built yet (issue #6). Until then the gateway reads its policy straight from a TOML
//! file (`mimamori-gw replay --policy …`), and nothing here pretends otherwise.
#![forbid(unsafe_code)]
