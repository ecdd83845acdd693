//! Errors of the recurrent layers and their weight files.

use std::fmt;

use autograd::AutogradError;
use tensor::TensorError;

/// What can go wrong building, running or loading a recurrent layer.
#[derive(Debug)]
pub enum RnnError {
    /// An invalid configuration (sizes, dropout, cells that do not chain).
    Config(String),
    /// Inputs or initial states of the wrong shape; the message names expected and given.
    Shape(String),
    /// A weight file that does not match the model: every missing, unexpected, mis-shaped or
    /// wrongly typed tensor is listed.
    Weights(Vec<String>),
    /// A file that cannot be read or parsed.
    File {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A tensor operation failed.
    Tensor(TensorError),
    /// Computing gradients failed.
    Autograd(AutogradError),
}

impl fmt::Display for RnnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RnnError::Config(m) => write!(f, "invalid configuration: {m}"),
            RnnError::Shape(m) => write!(f, "shape mismatch: {m}"),
            RnnError::Weights(problems) => {
                write!(
                    f,
                    "weights do not match the model ({} problems):",
                    problems.len()
                )?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            RnnError::File { path, message } => write!(f, "{path}: {message}"),
            RnnError::Tensor(e) => write!(f, "{e}"),
            RnnError::Autograd(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RnnError {}

impl From<TensorError> for RnnError {
    fn from(e: TensorError) -> Self {
        RnnError::Tensor(e)
    }
}

impl From<AutogradError> for RnnError {
    fn from(e: AutogradError) -> Self {
        RnnError::Autograd(e)
    }
}
