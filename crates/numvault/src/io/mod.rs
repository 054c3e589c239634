//! The file system under the engine: the [`vfs::Vfs`] trait the engine does
//! all its I/O through, the real file system, and [`sim::SimVfs`], a
//! fault-injecting simulator for crash, power-loss and I/O-error tests.

pub mod sim;
pub mod vfs;
