//! Elementwise unary ops. Each states its forward and its derivative, from the input `x` or
//! from the output `y` (tanh' = 1 − y², σ' = y(1 − y), exp' = y), in a few lines.

use tensor::Element;

use crate::node::Gradients;
use crate::var::Var;

/// Records a unary op whose derivative needs the input `x`.
///
/// `rule` builds ∂L/∂x from recorded ops, so under `create_graph` the gradient is itself
/// differentiable; `fused(g, x)` is the same formula for one element. When the backward pass
/// records nothing (the usual case) the gradient is formed by `fused` in one pass over the
/// data, instead of one pass and one buffer per op of `rule` (tanh's `g·(1 − y²)` is four).
#[track_caller]
fn from_input<T: Element>(
    op: &'static str,
    x: &Var<T>,
    value: tensor::Tensor<T>,
    rule: impl Fn(&Var<T>, &Var<T>) -> Var<T> + 'static,
    fused: impl Fn(T, T) -> T + Sync + Send + 'static,
) -> Var<T> {
    let input = x.clone();
    Var::record(op, value, &[x], false, move |ctx| {
        Gradients::from_iter([Some(apply(ctx.grad, &input, &rule, &fused))])
    })
}

/// Records a unary op whose derivative needs only the output `y` (the input is not kept);
/// `rule` and `fused(g, y)` as in [`from_input`].
#[track_caller]
fn from_output<T: Element>(
    op: &'static str,
    x: &Var<T>,
    value: tensor::Tensor<T>,
    rule: impl Fn(&Var<T>, &Var<T>) -> Var<T> + 'static,
    fused: impl Fn(T, T) -> T + Sync + Send + 'static,
) -> Var<T> {
    Var::record(op, value, &[x], true, move |ctx| {
        Gradients::from_iter([Some(apply(ctx.grad, ctx.output(), &rule, &fused))])
    })
}

/// The derivative rule as recorded ops when the backward pass is being recorded, else fused.
fn apply<T: Element>(
    grad: &Var<T>,
    saved: &Var<T>,
    rule: &impl Fn(&Var<T>, &Var<T>) -> Var<T>,
    fused: &(impl Fn(T, T) -> T + Sync + Send),
) -> Var<T> {
    if crate::mode::is_grad_enabled() {
        rule(grad, saved)
    } else {
        let fused = grad.value.try_zip_map(&saved.value, fused);
        Var::constant(fused.expect("a gradient has the shape of the value it belongs to"))
    }
}

/// `g` where `mask` is non-zero, else 0: a `where`, not `g · mask`, so a masked position gets
/// 0 even when `g` is ±∞ or NaN (PyTorch's `threshold_backward` and clamp backward), as the
/// fused forms of relu and clamp do.
fn pass_where<T: Element>(mask: &tensor::Tensor<T>, g: &Var<T>) -> Var<T> {
    Var::where_cond(mask, g, &Var::constant(tensor::Tensor::scalar(T::zero())))
}

impl<T: Element> Var<T> {
    /// `-x`.
    #[track_caller]
    pub fn neg(&self) -> Var<T> {
        Var::record("neg", self.value.neg(), &[self], false, |ctx| {
            Gradients::from_iter([Some(ctx.grad.neg())])
        })
    }

    /// `eˣ`; derivative `y`.
    #[track_caller]
    pub fn exp(&self) -> Var<T> {
        from_output("exp", self, self.value.exp(), |g, y| g * y, |g, y| g * y)
    }

    /// `ln x`; derivative `1/x`.
    #[track_caller]
    pub fn log(&self) -> Var<T> {
        from_input("log", self, self.value.log(), |g, x| g / x, |g, x| g / x)
    }

    /// `tanh x`; derivative `1 − y²`.
    #[track_caller]
    pub fn tanh(&self) -> Var<T> {
        from_output(
            "tanh",
            self,
            self.value.tanh(),
            |g, y| g * &(&(y * y) * -T::one()).add_scalar(T::one()),
            |g, y| g * (T::one() - y * y),
        )
    }

    /// `σ(x) = 1/(1 + e⁻ˣ)`; derivative `y(1 − y)`.
    #[track_caller]
    pub fn sigmoid(&self) -> Var<T> {
        from_output(
            "sigmoid",
            self,
            self.value.sigmoid(),
            |g, y| g * &(y * &(y * -T::one()).add_scalar(T::one())),
            |g, y| g * (y * (T::one() - y)),
        )
    }

    /// `max(x, 0)`; derivative 1 where `x > 0`, else 0.
    #[track_caller]
    pub fn relu(&self) -> Var<T> {
        from_output(
            "relu",
            self,
            self.value.relu(),
            |g, y| pass_where(&y.value.gt_mask(&tensor::Tensor::scalar(T::zero())), g),
            |g, y| if y > T::zero() { g } else { T::zero() },
        )
    }

    /// `√x`; derivative `1/(2y)`.
    #[track_caller]
    pub fn sqrt(&self) -> Var<T> {
        let half = T::from_f64_lossy(0.5);
        from_output(
            "sqrt",
            self,
            self.value.sqrt(),
            move |g, y| &(g / y) * half,
            move |g, y| g / y * half,
        )
    }

    /// `|x|`; derivative `sign(x)` (0 at 0, as PyTorch).
    #[track_caller]
    pub fn abs(&self) -> Var<T> {
        from_input(
            "abs",
            self,
            self.value.abs(),
            |g, x| g * &Var::constant(x.value.sign()),
            // The product itself, as the rule: at x = 0 an infinite `g` gives NaN (as PyTorch).
            |g, x| g * x.sign(),
        )
    }

    /// `xᵖ`; derivative `p·xᵖ⁻¹`.
    #[track_caller]
    pub fn powf(&self, exponent: T) -> Var<T> {
        from_input(
            "powf",
            self,
            self.value.powf(exponent),
            move |g, x| g * &(&x.powf(exponent - T::one()) * exponent),
            move |g, x| g * (x.powf(exponent - T::one()) * exponent),
        )
    }

    /// `1/x`; derivative `−y²`.
    #[track_caller]
    pub fn recip(&self) -> Var<T> {
        from_output(
            "recip",
            self,
            self.value.recip(),
            |g, y| g * &(&(y * y) * -T::one()),
            |g, y| g * (y * y * -T::one()),
        )
    }

    /// `x²`; derivative `2x`.
    #[track_caller]
    pub fn square(&self) -> Var<T> {
        let two = T::from_f64_lossy(2.0);
        from_input(
            "square",
            self,
            self.value.square(),
            move |g, x| g * &(x * two),
            move |g, x| g * (x * two),
        )
    }

    /// `x + s` for a scalar `s`.
    #[track_caller]
    pub fn add_scalar(&self, s: T) -> Var<T> {
        Var::record(
            "add_scalar",
            self.value.add_scalar(s),
            &[self],
            false,
            |ctx| Gradients::from_iter([Some(ctx.grad.clone())]),
        )
    }

    /// `x · s` for a scalar `s`.
    #[track_caller]
    pub fn mul_scalar(&self, s: T) -> Var<T> {
        Var::record(
            "mul_scalar",
            self.value.mul_scalar(s),
            &[self],
            false,
            move |ctx| Gradients::from_iter([Some(ctx.grad.mul_scalar(s))]),
        )
    }

    /// Clamps into `[min, max]`; the gradient passes where `min ≤ x ≤ max` (as PyTorch).
    #[track_caller]
    pub fn clamp(&self, min: T, max: T) -> Var<T> {
        let inside = move |x: T| x >= min && x <= max;
        from_input(
            "clamp",
            self,
            self.value.clamp(min, max),
            move |g, x| {
                pass_where(
                    &x.value
                        .map(|v| if inside(v) { T::one() } else { T::zero() }),
                    g,
                )
            },
            move |g, x| if inside(x) { g } else { T::zero() },
        )
    }
}
