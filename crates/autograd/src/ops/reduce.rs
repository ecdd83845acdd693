//! Reductions. The gradient of a reduced value is broadcast back over the reduced dimensions;
//! for max and min it goes to the positions that attained it, split evenly among ties.

use tensor::{Element, Shape, Tensor, TensorError};

use crate::node::Gradients;
use crate::ops::panicking_forms;
use crate::var::Var;

/// Resolved reduction dimensions (all when empty), for reshaping gradients to keepdim form.
fn keepdim_shape(shape: &[usize], dims: &[isize]) -> Vec<usize> {
    let rank = shape.len() as isize;
    let resolved: Vec<usize> = dims
        .iter()
        .map(|&d| {
            if d < 0 {
                (d + rank) as usize
            } else {
                d as usize
            }
        })
        .collect();
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            if dims.is_empty() || resolved.contains(&i) {
                1
            } else {
                s
            }
        })
        .collect()
}

impl<T: Element> Var<T> {
    /// Sum over `dims` (all when empty).
    #[track_caller]
    pub fn try_sum(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let value = self.value.try_sum(dims, keepdim)?;
        let shape = Shape::from_slice(self.shape());
        let kept = keepdim_shape(&shape, dims);
        Ok(Var::record("sum", value, &[self], false, move |ctx| {
            Gradients::from_iter([Some(ctx.grad.reshape(&kept).broadcast_to(&shape))])
        }))
    }

    /// Mean over `dims` (all when empty).
    #[track_caller]
    pub fn try_mean(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let total = self.try_sum(dims, keepdim)?;
        let count = self.value.len() / total.value.len().max(1);
        Ok(total.mul_scalar(T::one() / T::from_usize(count.max(1)).unwrap()))
    }

    /// Maximum over `dims`; the gradient goes to the maxima, split evenly among ties.
    #[track_caller]
    pub fn try_max(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let value = self.value.try_max(dims, keepdim)?;
        Ok(self.extreme("max", value, dims))
    }

    /// Minimum over `dims`; the gradient goes to the minima, split evenly among ties.
    #[track_caller]
    pub fn try_min(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let value = self.value.try_min(dims, keepdim)?;
        Ok(self.extreme("min", value, dims))
    }

    #[track_caller]
    fn extreme(&self, op: &'static str, value: Tensor<T>, dims: &[isize]) -> Var<T> {
        let kept = keepdim_shape(self.shape(), dims);
        let attained = self.value.eq_mask(&value.reshape(&kept));
        let share = attained.div(&attained.sum(dims, true));
        Var::record(op, value, &[self], false, move |ctx| {
            Gradients::from_iter([Some(
                &ctx.grad.reshape(&kept) * &Var::constant(share.clone()),
            )])
        })
    }

    /// Euclidean norm over `dims`; the gradient is `x/‖x‖` (0 where the norm is 0, as PyTorch).
    #[track_caller]
    pub fn try_norm_l2(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let value = self.value.try_norm_l2(dims, keepdim)?;
        let kept = keepdim_shape(self.shape(), dims);
        let input = self.clone();
        Ok(Var::record("norm_l2", value, &[self], true, move |ctx| {
            let norm = ctx.output().reshape(&kept);
            let nonzero = Var::constant(norm.value.ne_mask(&Tensor::scalar(T::zero())));
            // Divide by 1 where the norm is 0 so the masked result is 0, not NaN.
            let safe = &(&norm * &nonzero) + &nonzero.neg().add_scalar(T::one());
            let scale = &(&ctx.grad.reshape(&kept) / &safe) * &nonzero;
            Gradients::from_iter([Some(&input * &scale)])
        }))
    }

    /// Stable `log Σ exp` over `dims`; the gradient is the softmax, `exp(x − out)`.
    #[track_caller]
    pub fn try_logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Var<T>, TensorError> {
        let value = self.value.try_logsumexp(dims, keepdim)?;
        let kept = keepdim_shape(self.shape(), dims);
        let input = self.clone();
        Ok(Var::record("logsumexp", value, &[self], true, move |ctx| {
            let weights = (&input - &ctx.output().reshape(&kept)).exp();
            Gradients::from_iter([Some(&ctx.grad.reshape(&kept) * &weights)])
        }))
    }

    panicking_forms! {
        /// Sum over `dims` (all when empty); panics on a bad dimension.
        fn sum => try_sum(dims: &[isize], keepdim: bool) -> Var<T>;
        /// Mean over `dims` (all when empty).
        fn mean => try_mean(dims: &[isize], keepdim: bool) -> Var<T>;
        /// Maximum over `dims` (all when empty).
        fn max => try_max(dims: &[isize], keepdim: bool) -> Var<T>;
        /// Minimum over `dims` (all when empty).
        fn min => try_min(dims: &[isize], keepdim: bool) -> Var<T>;
        /// Euclidean norm over `dims` (all when empty).
        fn norm_l2 => try_norm_l2(dims: &[isize], keepdim: bool) -> Var<T>;
        /// Stable `log Σ exp` over `dims`.
        fn logsumexp => try_logsumexp(dims: &[isize], keepdim: bool) -> Var<T>;
    }
}
