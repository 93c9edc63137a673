//! Incident rules (TOML, with an embedded default).
