//! Customer notifications: the mail text (Japanese first) and its delivery.

pub mod text;
