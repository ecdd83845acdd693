//! Broadcasting binary ops. Gradients of a broadcast operand are summed back to its shape
//! (`sum_to_shape`, itself differentiable), and masks from comparisons are constants.

use tensor::{Element, Shape, Tensor, TensorError};

use crate::node::Gradients;
use crate::ops::panicking_forms;
use crate::var::Var;

/// Records a broadcasting binary op. `rule(g, a, b, out)` returns the gradients at the
/// broadcast shape; they are reduced to each operand's own shape here.
#[track_caller]
fn binary<T: Element>(
    op: &'static str,
    a: &Var<T>,
    b: &Var<T>,
    value: Tensor<T>,
    save_output: bool,
    rule: impl Fn(
        &Var<T>,
        &Var<T>,
        &Var<T>,
        Option<&Var<T>>,
        &[bool],
    ) -> (Option<Var<T>>, Option<Var<T>>)
    + 'static,
) -> Var<T> {
    let (lhs, rhs) = (a.clone(), b.clone());
    Var::record(op, value, &[a, b], save_output, move |ctx| {
        let (ga, gb) = rule(ctx.grad, &lhs, &rhs, ctx.output.as_ref(), ctx.needs);
        Gradients::from_iter([
            ga.map(|g| reduce_to(g, lhs.shape())),
            gb.map(|g| reduce_to(g, rhs.shape())),
        ])
    })
}

/// `g` summed down to `shape` (a no-op, without a copy, when it already has that shape).
pub(crate) fn reduce_to<T: Element>(g: Var<T>, shape: &[usize]) -> Var<T> {
    if g.shape() == shape {
        g
    } else {
        g.sum_to_shape(shape)
    }
}

/// Records `a + b` or `a − b`. Their rule needs only the operands' shapes, so unlike
/// [`binary`] it does not keep the operands' values alive until backward.
#[track_caller]
fn add_or_sub<T: Element>(
    op: &'static str,
    a: &Var<T>,
    b: &Var<T>,
    value: Tensor<T>,
    subtract: bool,
) -> Var<T> {
    let shape_a = Shape::from_slice(a.shape());
    let shape_b = Shape::from_slice(b.shape());
    Var::record(op, value, &[a, b], false, move |ctx| {
        let g = ctx.grad;
        Gradients::from_iter([
            ctx.needs[0].then(|| reduce_to(g.clone(), &shape_a)),
            ctx.needs[1].then(|| reduce_to(if subtract { g.neg() } else { g.clone() }, &shape_b)),
        ])
    })
}

impl<T: Element> Var<T> {
    /// `a + b` with broadcasting.
    #[track_caller]
    pub fn try_add(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_add(&other.value)?;
        Ok(add_or_sub("add", self, other, value, false))
    }

    /// `a − b` with broadcasting.
    #[track_caller]
    pub fn try_sub(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_sub(&other.value)?;
        Ok(add_or_sub("sub", self, other, value, true))
    }

    /// `a · b` (elementwise) with broadcasting.
    #[track_caller]
    pub fn try_mul(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_mul(&other.value)?;
        Ok(binary(
            "mul",
            self,
            other,
            value,
            false,
            |g, a, b, _, needs| (needs[0].then(|| g * b), needs[1].then(|| g * a)),
        ))
    }

    /// `a / b` with broadcasting.
    #[track_caller]
    pub fn try_div(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_div(&other.value)?;
        Ok(binary(
            "div",
            self,
            other,
            value,
            false,
            |g, a, b, _, needs| {
                let ga = g / b;
                let gb = needs[1].then(|| &(&ga * a) / &b.neg());
                (needs[0].then_some(ga), gb)
            },
        ))
    }

    /// `aᵇ` with broadcasting; the gradient for `b` is `aᵇ·ln a` (0 where `a = 0`, as PyTorch).
    #[track_caller]
    pub fn try_pow(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_pow(&other.value)?;
        Ok(binary(
            "pow",
            self,
            other,
            value,
            false,
            |g, a, b, _, needs| {
                let ga = needs[0].then(|| g * &(b * &a.pow(&b.add_scalar(-T::one()))));
                let gb = needs[1].then(|| {
                    let nonzero = Var::constant(a.value.ne_mask(&Tensor::scalar(T::zero())));
                    // Replace a = 0 by 1 under the log so 0·ln 0 does not make NaN.
                    let safe_a = &(a * &nonzero) + &nonzero.neg().add_scalar(T::one());
                    &(g * &a.pow(b)) * &(&safe_a.log() * &nonzero)
                });
                (ga, gb)
            },
        ))
    }

    /// Elementwise maximum; where `a = b` the gradient is split evenly (as PyTorch).
    #[track_caller]
    pub fn try_maximum(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_maximum(&other.value)?;
        Ok(binary(
            "maximum",
            self,
            other,
            value,
            false,
            |g, a, b, _, _| {
                select_gradients(g, &a.value.gt_mask(&b.value), &a.value.eq_mask(&b.value))
            },
        ))
    }

    /// Elementwise minimum; where `a = b` the gradient is split evenly (as PyTorch).
    #[track_caller]
    pub fn try_minimum(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        let value = self.value.try_minimum(&other.value)?;
        Ok(binary(
            "minimum",
            self,
            other,
            value,
            false,
            |g, a, b, _, _| {
                select_gradients(g, &a.value.lt_mask(&b.value), &a.value.eq_mask(&b.value))
            },
        ))
    }

    /// Picks `if_true` where `condition` is non-zero and `if_false` elsewhere, broadcasting all
    /// three (`torch.where`). The condition is a constant mask.
    #[track_caller]
    pub fn try_where_cond(
        condition: &Tensor<T>,
        if_true: &Var<T>,
        if_false: &Var<T>,
    ) -> Result<Var<T>, TensorError> {
        let value = condition.try_where_cond(&if_true.value, &if_false.value)?;
        let mask = condition.ne_mask(&Tensor::scalar(T::zero()));
        Ok(binary(
            "where",
            if_true,
            if_false,
            value,
            false,
            move |g, _, _, _, _| {
                let picked = Var::constant(mask.clone());
                let g_true = g * &picked;
                let g_false = g - &g_true;
                (Some(g_true), Some(g_false))
            },
        ))
    }

    /// `where(condition, if_true, if_false)`; panics when the shapes do not broadcast.
    #[track_caller]
    pub fn where_cond(condition: &Tensor<T>, if_true: &Var<T>, if_false: &Var<T>) -> Var<T> {
        Self::try_where_cond(condition, if_true, if_false).unwrap_or_else(|e| panic!("{e}"))
    }

    panicking_forms! {
        /// `a + b` with broadcasting; panics when the shapes do not broadcast.
        fn add => try_add(other: &Var<T>) -> Var<T>;
        /// `a − b` with broadcasting.
        fn sub => try_sub(other: &Var<T>) -> Var<T>;
        /// `a · b` with broadcasting.
        fn mul => try_mul(other: &Var<T>) -> Var<T>;
        /// `a / b` with broadcasting.
        fn div => try_div(other: &Var<T>) -> Var<T>;
        /// `aᵇ` with broadcasting.
        fn pow => try_pow(other: &Var<T>) -> Var<T>;
        /// Elementwise maximum with broadcasting.
        fn maximum => try_maximum(other: &Var<T>) -> Var<T>;
        /// Elementwise minimum with broadcasting.
        fn minimum => try_minimum(other: &Var<T>) -> Var<T>;
    }
}

/// Routes `g` to `a` where `a_wins`, to `b` elsewhere, and half to each where they tie.
fn select_gradients<T: Element>(
    g: &Var<T>,
    a_wins: &Tensor<T>,
    tie: &Tensor<T>,
) -> (Option<Var<T>>, Option<Var<T>>) {
    let half = T::from_f64_lossy(0.5);
    let share_a = a_wins.add(&tie.mul_scalar(half));
    let share_b = share_a.mul_scalar(-T::one()).add_scalar(T::one());
    (
        Some(g * &Var::constant(share_a)),
        Some(g * &Var::constant(share_b)),
    )
}
