//! On-site support: the monthly quota per plan and the hours visits may be booked in.
