//! Japan time and the service windows (phone 9:00–21:00, repair dispatch).
