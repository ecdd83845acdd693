//! The subcommands of the `tapeloop` binary, one per file.

pub mod bench;
pub mod compare;
pub mod flow;
pub mod gradcheck;
pub mod parity;
pub mod sample;
pub mod train;

/// Parses a size that must be at least 1 (a sequence length, batch, layer count, width): clap
/// then refuses `--hidden 0` with a message naming the flag, instead of the layer panicking
/// later or a zero batch training on nothing.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(value) => Ok(value),
        Err(error) => Err(error.to_string()),
    }
}
