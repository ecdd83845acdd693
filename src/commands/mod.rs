//! The subcommands of the `tapeloop` binary, one per file.

pub mod bench;
pub mod compare;
pub mod flow;
pub mod gradcheck;
pub mod parity;
pub mod sample;
pub mod train;
