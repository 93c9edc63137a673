//! The control plane (`mimamori-cp`): a REST API over the box's policy, compiled into
//! versioned snapshots that are hot-applied to the running gateway; the event store the
//! gateway streams into; Prometheus metrics; and a CLI over the API.
#![forbid(unsafe_code)]

pub mod api;
pub mod console;
pub mod db;
pub mod desk;
pub mod events;
pub mod gwlink;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod patterns;
pub mod report;
pub mod server;
