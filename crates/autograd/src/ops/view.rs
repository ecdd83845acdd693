//! Views and shape changes. Forward passes copy nothing (except `reshape` when the strides
//! forbid a view); each backward rule is the inverse movement of the gradient.

use tensor::{
    Element, Pieces, Shape, Tensor, TensorError, chunk_pieces, normalize_dim, split_pieces,
};

use crate::node::{Gradients, Shortcut, SliceOf};
use crate::ops::panicking_forms;
use crate::var::Var;

/// Records a single-input op whose backward is `rule(g)`.
#[track_caller]
fn movement<T: Element>(
    op: &'static str,
    x: &Var<T>,
    value: Tensor<T>,
    rule: impl Fn(&Var<T>) -> Var<T> + 'static,
) -> Var<T> {
    Var::record(op, value, &[x], false, move |ctx| {
        Gradients::from_iter([Some(rule(ctx.grad))])
    })
}

/// The gradient of a narrow: `g` placed at `start..start + len` of dimension `dim` of a zero
/// tensor of `shape` (a concatenation, so it is differentiable again).
fn pad_along<T: Element>(g: &Var<T>, dim: usize, start: usize, shape: &[usize]) -> Var<T> {
    let len = g.shape()[dim];
    let zeros = |size: usize| {
        let mut s = shape.to_vec();
        s[dim] = size;
        Var::constant(Tensor::zeros(&s))
    };
    let mut parts = Vec::with_capacity(3);
    if start > 0 {
        parts.push(zeros(start));
    }
    parts.push(g.clone());
    let after = shape[dim] - start - len;
    if after > 0 {
        parts.push(zeros(after));
    }
    if parts.len() == 1 {
        return g.clone();
    }
    let refs: Vec<&Var<T>> = parts.iter().collect();
    Var::cat(&refs, dim as isize)
}

impl<T: Element> Var<T> {
    /// Swaps two dimensions (a view).
    #[track_caller]
    pub fn try_transpose(&self, dim0: isize, dim1: isize) -> Result<Var<T>, TensorError> {
        let value = self.value.try_transpose(dim0, dim1)?;
        let rule = move |ctx: &crate::node::BackwardContext<'_, T>| {
            Gradients::from_iter([Some(ctx.grad.transpose(dim0, dim1))])
        };
        let swaps = normalize_dim("transpose", dim0, self.rank())?
            != normalize_dim("transpose", dim1, self.rank())?;
        if self.rank() == 2 && swaps {
            // A matrix transpose: deferred weight gradients pass through it (see `Shortcut`).
            return Ok(Var::record_with_shortcut(
                "transpose",
                value,
                &[self],
                Shortcut::Transpose,
                rule,
            ));
        }
        Ok(Var::record("transpose", value, &[self], false, rule))
    }

    /// The transpose of a 2-D variable (a view).
    #[track_caller]
    pub fn try_t(&self) -> Result<Var<T>, TensorError> {
        self.value.try_t()?;
        self.try_transpose(0, 1)
    }

    /// Reorders dimensions (a view).
    #[track_caller]
    pub fn try_permute(&self, order: &[isize]) -> Result<Var<T>, TensorError> {
        let value = self.value.try_permute(order)?;
        let rank = self.rank();
        let mut inverse = vec![0isize; rank];
        for (i, &d) in order.iter().enumerate() {
            inverse[normalize_dim("permute", d, rank)?] = i as isize;
        }
        Ok(movement("permute", self, value, move |g| {
            g.permute(&inverse)
        }))
    }

    /// Keeps `len` positions of `dim` from `start` (a view).
    #[track_caller]
    pub fn try_narrow(&self, dim: isize, start: usize, len: usize) -> Result<Var<T>, TensorError> {
        let value = self.value.try_narrow(dim, start, len)?;
        let d = normalize_dim("narrow", dim, self.rank())?;
        let shape = Shape::from_slice(self.shape());
        let slice = SliceOf {
            dim: d,
            start,
            squeezed: false,
        };
        Ok(Var::record_with_shortcut(
            "narrow",
            value,
            &[self],
            Shortcut::Slice(slice),
            move |ctx| Gradients::from_iter([Some(pad_along(ctx.grad, d, start, &shape))]),
        ))
    }

    /// Fixes `dim` at `index` and removes it (a view).
    #[track_caller]
    pub fn try_select(&self, dim: isize, index: usize) -> Result<Var<T>, TensorError> {
        let value = self.value.try_select(dim, index)?;
        let d = normalize_dim("select", dim, self.rank())?;
        let shape = Shape::from_slice(self.shape());
        let slice = SliceOf {
            dim: d,
            start: index,
            squeezed: true,
        };
        Ok(Var::record_with_shortcut(
            "select",
            value,
            &[self],
            Shortcut::Slice(slice),
            move |ctx| {
                Gradients::from_iter([Some(pad_along(
                    &ctx.grad.unsqueeze(d as isize),
                    d,
                    index,
                    &shape,
                ))])
            },
        ))
    }

    /// A new shape with the same elements (a view when the strides allow).
    #[track_caller]
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Var<T>, TensorError> {
        let value = self.value.try_reshape(shape)?;
        let original = Shape::from_slice(self.shape());
        Ok(movement("reshape", self, value, move |g| {
            g.reshape(&original)
        }))
    }

    /// Broadcasts to a larger shape (a view with stride 0); the gradient is summed back.
    #[track_caller]
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Var<T>, TensorError> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let value = self.value.try_broadcast_to(shape)?;
        let original = Shape::from_slice(self.shape());
        Ok(movement("broadcast_to", self, value, move |g| {
            g.sum_to_shape(&original)
        }))
    }

    /// Sums a broadcast shape back down to `shape`; the gradient is broadcast up again.
    #[track_caller]
    pub fn try_sum_to_shape(&self, shape: &[usize]) -> Result<Var<T>, TensorError> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let value = self.value.try_sum_to_shape(shape)?;
        let original = Shape::from_slice(self.shape());
        Ok(movement("sum_to_shape", self, value, move |g| {
            g.broadcast_to(&original)
        }))
    }

    /// Removes a size-1 dimension (a view).
    #[track_caller]
    pub fn try_squeeze(&self, dim: isize) -> Result<Var<T>, TensorError> {
        let value = self.value.try_squeeze(dim)?;
        let original = Shape::from_slice(self.shape());
        Ok(movement("squeeze", self, value, move |g| {
            g.reshape(&original)
        }))
    }

    /// Inserts a size-1 dimension (a view).
    #[track_caller]
    pub fn try_unsqueeze(&self, dim: isize) -> Result<Var<T>, TensorError> {
        let value = self.value.try_unsqueeze(dim)?;
        let original = Shape::from_slice(self.shape());
        Ok(movement("unsqueeze", self, value, move |g| {
            g.reshape(&original)
        }))
    }

    /// Splits along `dim` into views of `size` (the last may be smaller), as
    /// [`Tensor::try_split`].
    #[track_caller]
    pub fn try_split(&self, size: usize, dim: isize) -> Result<Vec<Var<T>>, TensorError> {
        Ok(self.narrow_pieces(&split_pieces(self.shape(), size, dim)?))
    }

    /// Splits along `dim` into `chunks` views (PyTorch's sizes), as [`Tensor::try_chunk`]:
    /// an empty dimension gives `chunks` empty views.
    #[track_caller]
    pub fn try_chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Var<T>>, TensorError> {
        Ok(self.narrow_pieces(&chunk_pieces(self.shape(), chunks, dim)?))
    }

    /// One `narrow` per piece. The pieces come from the shape alone: building them as tensors
    /// first (to check the arguments) tripled the views made, and `chunk` runs at every step of
    /// an LSTM.
    #[track_caller]
    fn narrow_pieces(&self, pieces: &Pieces) -> Vec<Var<T>> {
        let d = pieces.dim as isize;
        pieces
            .ranges
            .iter()
            .map(|&(start, len)| self.narrow(d, start, len))
            .collect()
    }

    /// All elements as one dimension.
    #[track_caller]
    pub fn flatten(&self) -> Var<T> {
        self.reshape(&[self.value.len()])
    }

    panicking_forms! {
        /// Swaps two dimensions (a view); panics on a bad dimension.
        fn transpose => try_transpose(dim0: isize, dim1: isize) -> Var<T>;
        /// The transpose of a 2-D variable.
        fn t => try_t() -> Var<T>;
        /// Reorders dimensions.
        fn permute => try_permute(order: &[isize]) -> Var<T>;
        /// A range along one dimension.
        fn narrow => try_narrow(dim: isize, start: usize, len: usize) -> Var<T>;
        /// One index along a dimension, which is removed.
        fn select => try_select(dim: isize, index: usize) -> Var<T>;
        /// A new shape with the same elements.
        fn reshape => try_reshape(shape: &[usize]) -> Var<T>;
        /// Broadcasts to a larger shape.
        fn broadcast_to => try_broadcast_to(shape: &[usize]) -> Var<T>;
        /// Sums a broadcast shape back down.
        fn sum_to_shape => try_sum_to_shape(shape: &[usize]) -> Var<T>;
        /// Removes a size-1 dimension.
        fn squeeze => try_squeeze(dim: isize) -> Var<T>;
        /// Inserts a size-1 dimension.
        fn unsqueeze => try_unsqueeze(dim: isize) -> Var<T>;
        /// Splits along `dim` into views of `size`.
        fn split => try_split(size: usize, dim: isize) -> Vec<Var<T>>;
        /// Splits along `dim` into `chunks` views, e.g. an LSTM's four gates.
        ///
        /// ```
        /// use tapeloop_autograd::{Var, Tensor};
        /// let gates = Var::leaf(Tensor::<f64>::zeros(&[2, 8])).chunk(4, 1);
        /// assert_eq!(gates.len(), 4);
        /// assert_eq!(gates[0].shape(), &[2, 2]);
        /// ```
        fn chunk => try_chunk(chunks: usize, dim: isize) -> Vec<Var<T>>;
    }
}
