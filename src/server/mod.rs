//! Raw calls into the server's module API, each behind a safe function.

pub mod cluster_bus;
