//! Pattern files and the languages they are written in: Suricata rules, URL categories,
//! application and malware definitions.
//!
//! Nothing lives here yet. The IPS issue (#4) brings the rule parser and the detection
//! engine, the category issue (#5) the category database. The crate exists now so that the
//! dependency direction (`pipelines` depends on `signatures`, never the reverse) is fixed
//! from the start.
#![forbid(unsafe_code)]
