//! Concatenation and stacking; each input's gradient is its slice of the output gradient.

use tensor::{Element, Tensor, TensorError};

use crate::node::Gradients;
use crate::var::Var;

impl<T: Element> Var<T> {
    /// Concatenates along `dim`.
    #[track_caller]
    pub fn try_cat(vars: &[&Var<T>], dim: isize) -> Result<Var<T>, TensorError> {
        let values: Vec<&Tensor<T>> = vars.iter().map(|v| &v.value).collect();
        let value = Tensor::try_cat(&values, dim)?;
        let d = if dim < 0 {
            dim + value.rank() as isize
        } else {
            dim
        };
        let sizes: Vec<usize> = vars.iter().map(|v| v.shape()[d as usize]).collect();
        Ok(Var::record("cat", value, vars, false, move |ctx| {
            let mut start = 0;
            sizes
                .iter()
                .zip(ctx.needs)
                .map(|(&size, &needed)| {
                    let piece = needed.then(|| ctx.grad.narrow(d, start, size));
                    start += size;
                    piece
                })
                .collect::<Gradients<T>>()
        }))
    }

    /// Concatenates along `dim`; panics when shapes differ outside `dim`.
    ///
    /// ```
    /// use tapeloop_autograd::{Var, Tensor};
    /// let a = Var::leaf(Tensor::<f64>::ones(&[2, 1]));
    /// let b = Var::leaf(Tensor::<f64>::zeros(&[2, 3]));
    /// assert_eq!(Var::cat(&[&a, &b], 1).shape(), &[2, 4]);
    /// ```
    #[track_caller]
    pub fn cat(vars: &[&Var<T>], dim: isize) -> Var<T> {
        Self::try_cat(vars, dim).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stacks equally shaped variables along a new dimension.
    #[track_caller]
    pub fn try_stack(vars: &[&Var<T>], dim: isize) -> Result<Var<T>, TensorError> {
        let values: Vec<&Tensor<T>> = vars.iter().map(|v| &v.value).collect();
        Tensor::try_stack(&values, dim)?;
        let rank = vars[0].rank() as isize + 1;
        let d = if dim < 0 { dim + rank } else { dim };
        let expanded: Vec<Var<T>> = vars.iter().map(|v| v.unsqueeze(d)).collect();
        let refs: Vec<&Var<T>> = expanded.iter().collect();
        Self::try_cat(&refs, d)
    }

    /// Stacks equally shaped variables along a new dimension; panics when shapes differ.
    #[track_caller]
    pub fn stack(vars: &[&Var<T>], dim: isize) -> Var<T> {
        Self::try_stack(vars, dim).unwrap_or_else(|e| panic!("{e}"))
    }
}
