//! mimamori-desk: the Security Support Desk.
//!
//! Boxes enrol with a one-time code and get a client certificate from the desk's CA
//! (`ca`); from then on their control planes talk to the desk over mutual TLS (`tls`):
//! event batches on an acknowledged stream and a heartbeat every minute (`ingest`).
//! Events become incidents by rules kept as data (`incident`), incidents notify the
//! customer's contacts by mail (`notify`), a silent box becomes a fault (`fault`),
//! on-site visits are booked within the plan's quota and the seed's hours (`onsite`).
//! Everything is stored through one repository layer over SQLite or PostgreSQL (`store`).

pub mod api;
pub mod bench;
pub mod ca;
pub mod clock;
pub mod console;
pub mod incident;
pub mod notify;
pub mod onsite;
pub mod ops;
pub mod server;
pub mod store;
pub mod tls;
