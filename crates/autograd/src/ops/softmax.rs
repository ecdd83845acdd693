//! Softmax and log-softmax, composed from logsumexp: their gradients (and second derivatives)
//! follow from the primitives with no rule of their own.

use tensor::{Element, TensorError};

use crate::ops::panicking_forms;
use crate::var::Var;

impl<T: Element> Var<T> {
    /// `x − logsumexp(x)` along `dim`.
    #[track_caller]
    pub fn try_log_softmax(&self, dim: isize) -> Result<Var<T>, TensorError> {
        Ok(self - &self.try_logsumexp(&[dim], true)?)
    }

    /// `exp(log_softmax(x))` along `dim`.
    #[track_caller]
    pub fn try_softmax(&self, dim: isize) -> Result<Var<T>, TensorError> {
        Ok(self.try_log_softmax(dim)?.exp())
    }

    panicking_forms! {
        /// Log-softmax along `dim`; panics on a bad dimension.
        fn log_softmax => try_log_softmax(dim: isize) -> Var<T>;
        /// Softmax along `dim`; panics on a bad dimension.
        ///
        /// ```
        /// use tapeloop_autograd::{Var, Tensor};
        /// let p = Var::leaf(Tensor::<f64>::zeros(&[4])).softmax(0);
        /// assert_eq!(p.value().to_vec(), vec![0.25; 4]);
        /// ```
        fn softmax => try_softmax(dim: isize) -> Var<T>;
    }
}
