//! The FFI layer: every call into the server's C API lives under this folder, each `unsafe`
//! with a `// SAFETY:` comment saying what makes it sound. The rest of the crate is safe Rust.
//! Callbacks the server makes are C functions here, generic over a trait the layer above
//! implements (`Blocker`, `ServerEvents`, `InfoSection`), so this layer never names it.

pub mod acl;
pub mod blocking;
pub mod cluster_bus;
pub mod command;
pub mod config;
pub mod datatype;
pub mod docs;
pub mod events;
pub mod info;
pub mod keys;
pub mod reply;
