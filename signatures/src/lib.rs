//! Pattern files and the languages they are written in.
//!
//! Today: the Suricata rule language parser (`rule`), with a loader that reports what it
//! loaded and what it skipped and why. The detection engine that runs the rules, URL
//! categories and malware definitions are still to come (issues #4 and #5).
#![forbid(unsafe_code)]

pub mod bundle;
pub mod category;
pub mod engine;
pub mod rule;
