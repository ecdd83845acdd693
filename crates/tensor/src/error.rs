//! The error every fallible tensor operation returns.

use std::fmt;

/// What went wrong in a tensor operation: the op's name and a message that names the shapes
/// involved, e.g. `matmul: [3, 4] x [5, 6]: inner dimensions 4 and 5 differ`.
///
/// Every op that can fail has a `try_` form returning this error; the plain form panics with the
/// same message.
///
/// ```
/// use tapeloop_tensor::Tensor;
/// let a = Tensor::<f32>::zeros(&[3, 4]);
/// let b = Tensor::<f32>::zeros(&[5, 6]);
/// let err = a.try_matmul(&b).unwrap_err();
/// assert_eq!(err.to_string(), "matmul: [3, 4] x [5, 6]: inner dimensions 4 and 5 differ");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorError {
    /// The operation that failed, e.g. `"matmul"`.
    pub op: &'static str,
    /// What was expected and what came.
    pub message: String,
}

impl TensorError {
    /// Builds an error for `op` with a message.
    pub fn new(op: &'static str, message: impl Into<String>) -> Self {
        Self {
            op,
            message: message.into(),
        }
    }
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message)
    }
}

impl std::error::Error for TensorError {}

/// `Result` with a [`TensorError`].
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Formats a shape the way PyTorch prints it: `[3, 4]`.
pub(crate) fn shape_str(shape: &[usize]) -> String {
    format!("{shape:?}")
}
