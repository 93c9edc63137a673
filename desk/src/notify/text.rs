//! The notification mail: subject and body in Japanese or English.
