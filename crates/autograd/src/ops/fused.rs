//! Fused elementwise ops: a chain of elementwise math written once, for any [`Scalar`], and
//! recorded as one node.
//!
//! A recurrent cell's body is a dozen elementwise ops per step (an LSTM's three sigmoids, two
//! tanh, three products and a sum); each recorded separately costs a node, a buffer and a pass
//! forward and again backward. Written as an [`Elementwise`] function, the body runs as one
//! pass over its inputs, and its backward is derived from the same code: the function is
//! evaluated on dual numbers, which carry the derivative with respect to every input along
//! with the value, so no derivative is written by hand. Under `create_graph` it is evaluated
//! on dual numbers made of variables, so the gradient is itself recorded and differentiable.

use std::ops::{Add, Div, Mul, Neg, Sub};

use tensor::{Element, ElementKernel, Tensor, TensorError};

use crate::node::Gradients;
use crate::ops::binary::reduce_to;
use crate::var::Var;

/// A number an [`Elementwise`] function can be evaluated on: a tensor's elements (forward),
/// dual numbers carrying derivatives (backward), and variables (backward under
/// `create_graph`). Write the function with these operations only.
///
/// ```
/// use tapeloop_autograd::Scalar;
///
/// /// softplus(x) = ln(1 + eˣ), for any `Scalar`.
/// fn softplus<S: Scalar>(x: S) -> S {
///     (S::constant(1.0) + x.exp()).ln()
/// }
/// // `Var` is a `Scalar` too: the same function, recorded op by op.
/// let x = tapeloop_autograd::Var::constant(tapeloop_autograd::Tensor::<f64>::scalar(0.0));
/// assert_eq!(softplus(x).item(), 2f64.ln());
/// ```
pub trait Scalar:
    Clone
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// A constant.
    fn constant(value: f64) -> Self;
    /// `eˣ`.
    fn exp(&self) -> Self;
    /// `ln x`.
    fn ln(&self) -> Self;
    /// `√x`.
    fn sqrt(&self) -> Self;
    /// `tanh x`, computed as [`Tensor::tanh`] computes it.
    fn tanh(&self) -> Self;
    /// `1/(1 + e⁻ˣ)`, computed as [`Tensor::sigmoid`] computes it.
    fn sigmoid(&self) -> Self;
}

/// An elementwise function of `N` inputs, written once for every [`Scalar`] so that
/// [`Var::fused`] can evaluate it and derive its gradient.
///
/// Mark `eval` `#[inline(always)]`: the pass over the elements is vectorized only when the
/// function is inlined into it, and evaluated on dual numbers (for the gradient) it is often
/// too large for the compiler to inline of its own accord.
///
/// ```
/// use tapeloop_autograd::{Elementwise, Scalar, Tensor, Var};
///
/// /// An LSTM's cell state: c' = σ(f)·c + σ(i)·tanh(g).
/// struct CellState;
///
/// impl Elementwise<4> for CellState {
///     #[inline(always)]
///     fn eval<S: Scalar>(&self, [i, f, g, c]: [S; 4]) -> S {
///         f.sigmoid() * c + i.sigmoid() * g.tanh()
///     }
/// }
///
/// let gate = |v: f64| Var::leaf(Tensor::from_vec(vec![v; 3], &[1, 3]));
/// let (i, f, g, c) = (gate(0.1), gate(0.2), gate(0.3), gate(0.4));
/// let fused = Var::fused("cell_state", [&i, &f, &g, &c], CellState);
/// let plain = &(&f.sigmoid() * &c) + &(&i.sigmoid() * &g.tanh());
/// for (a, b) in fused.value().to_vec().iter().zip(plain.value().to_vec()) {
///     assert!((a - b).abs() < 1e-12);
/// }
/// fused.sum(&[], false).backward().unwrap();
/// // ∂c'/∂c = σ(f)
/// let expected = 1.0 / (1.0 + (-0.2f64).exp());
/// assert!((c.grad().unwrap().to_vec()[0] - expected).abs() < 1e-12);
/// ```
pub trait Elementwise<const N: usize> {
    /// The function's value at `inputs`.
    fn eval<S: Scalar>(&self, inputs: [S; N]) -> S;
}

impl<T: Element> Var<T> {
    /// Applies `f` elementwise to `inputs` (broadcast to a common shape) as one recorded op:
    /// one pass forward and one backward, however many operations `f` chains. Its gradient
    /// comes from `f` itself (see [`Elementwise`]); `op` names the node.
    ///
    /// ```
    /// use tapeloop_autograd::{Elementwise, Scalar, Tensor, Var};
    ///
    /// /// tanh(x + y), as a plain RNN's step ends.
    /// struct TanhOfSum;
    /// impl Elementwise<2> for TanhOfSum {
    ///     #[inline(always)]
    ///     fn eval<S: Scalar>(&self, [x, y]: [S; 2]) -> S {
    ///         (x + y).tanh()
    ///     }
    /// }
    ///
    /// let x = Var::leaf(Tensor::<f64>::zeros(&[2, 3]));
    /// let bias = Var::leaf(Tensor::<f64>::zeros(&[3])); // broadcast over the rows
    /// let h = Var::try_fused("tanh_of_sum", [&x, &bias], TanhOfSum).unwrap();
    /// h.sum(&[], false).backward().unwrap();
    /// // tanh'(0) = 1 per element, summed over the two rows for the bias.
    /// assert_eq!(bias.grad().unwrap().to_vec(), vec![2.0; 3]);
    /// let wrong = Var::leaf(Tensor::<f64>::zeros(&[4]));
    /// assert!(Var::try_fused("tanh_of_sum", [&x, &wrong], TanhOfSum).is_err());
    /// ```
    #[track_caller]
    pub fn try_fused<F, const N: usize>(
        op: &'static str,
        inputs: [&Var<T>; N],
        f: F,
    ) -> Result<Var<T>, TensorError>
    where
        F: Elementwise<N> + Send + Sync + 'static,
    {
        let values = inputs.map(|x| &x.value);
        let [value] = Tensor::try_map_elements_with(op, values, None, ValueOf(&f))?;
        let saved: [Var<T>; N] = inputs.map(Var::clone);
        Ok(Var::record(op, value, &inputs, false, move |ctx| {
            let gradients = if crate::mode::is_grad_enabled() {
                recorded_gradients(&f, &saved, ctx.grad, ctx.needs)
            } else {
                fused_gradients(op, &f, &saved, ctx.grad).map(Some)
            };
            let mut out = Gradients::new();
            for ((gradient, input), &needed) in gradients.into_iter().zip(&saved).zip(ctx.needs) {
                out.push(
                    gradient
                        .filter(|_| needed)
                        .map(|g| reduce_to(g, input.shape())),
                );
            }
            out
        }))
    }

    /// [`Var::try_fused`], panicking when the inputs' shapes do not broadcast.
    #[track_caller]
    pub fn fused<F, const N: usize>(op: &'static str, inputs: [&Var<T>; N], f: F) -> Var<T>
    where
        F: Elementwise<N> + Send + Sync + 'static,
    {
        Self::try_fused(op, inputs, f).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// `g · ∂f/∂xⱼ` for every input, at the common shape, in one pass over the data.
fn fused_gradients<T: Element, F: Elementwise<N> + Sync, const N: usize>(
    op: &'static str,
    f: &F,
    inputs: &[Var<T>; N],
    grad: &Var<T>,
) -> [Var<T>; N] {
    let values = inputs.each_ref().map(|x| &x.value);
    let partials =
        Tensor::try_map_elements_with(op, values, Some(&grad.value), WeightedPartials(f));
    partials
        .expect("a gradient has the shape of the value it belongs to")
        .map(Var::constant)
}

/// `f` at one element, as a kernel whose call is forced inline: left as a call, the loop over
/// the elements around it was not vectorized.
struct ValueOf<'a, F>(&'a F);

impl<T: Element, F: Elementwise<N> + Sync, const N: usize> ElementKernel<T, N, 1>
    for ValueOf<'_, F>
{
    #[inline(always)]
    fn at(&self, x: [T; N], _: T) -> [T; 1] {
        [self.0.eval(x.map(Number)).0]
    }
}

/// `g · ∂f/∂xⱼ` at one element, for every `j` (`g` comes as the weight); inlined as
/// [`ValueOf`] is.
struct WeightedPartials<'a, F>(&'a F);

impl<T: Element, F: Elementwise<N> + Sync, const N: usize> ElementKernel<T, N, N>
    for WeightedPartials<'_, F>
{
    #[inline(always)]
    fn at(&self, x: [T; N], g: T) -> [T; N] {
        let duals = std::array::from_fn(|j| Dual::seed(Number(x[j]), j));
        // An input the result does not depend on has a zero gradient.
        (self.0.eval(duals).tangent).map(|d| d.map_or(T::zero(), |d| g * d.0))
    }
}

/// `g · ∂f/∂xⱼ` as recorded ops (under `create_graph`), so it can be differentiated again;
/// `None` for the inputs that need none or that the result does not depend on. Only the inputs
/// that need a gradient carry a tangent, so nothing is recorded for the others.
fn recorded_gradients<T: Element, F: Elementwise<N>, const N: usize>(
    f: &F,
    inputs: &[Var<T>; N],
    grad: &Var<T>,
    needs: &[bool],
) -> [Option<Var<T>>; N] {
    let duals = std::array::from_fn(|j| {
        let value = inputs[j].clone();
        if needs[j] {
            Dual::seed(value, j)
        } else {
            Dual::from(value)
        }
    });
    (f.eval(duals).tangent).map(|d| d.map(|d| grad * &d))
}

/// A tensor element as a [`Scalar`].
#[derive(Clone, Copy)]
struct Number<T>(T);

impl<T: Element> Scalar for Number<T> {
    #[inline(always)]
    fn constant(value: f64) -> Self {
        Number(T::from_f64_lossy(value))
    }
    #[inline(always)]
    fn exp(&self) -> Self {
        Number(self.0.exp())
    }
    #[inline(always)]
    fn ln(&self) -> Self {
        Number(self.0.ln())
    }
    #[inline(always)]
    fn sqrt(&self) -> Self {
        Number(self.0.sqrt())
    }
    #[inline(always)]
    fn tanh(&self) -> Self {
        Number(tensor::approx::tanh(self.0))
    }
    #[inline(always)]
    fn sigmoid(&self) -> Self {
        Number(tensor::approx::sigmoid(self.0))
    }
}

/// Implements a binary operator for a wrapper type through a closure on its parts.
macro_rules! number_operator {
    ($($trait:ident $method:ident $op:tt),*) => {$(
        impl<T: Element> $trait for Number<T> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, rhs: Self) -> Self {
                Number(self.0 $op rhs.0)
            }
        }
    )*};
}
number_operator!(Add add +, Sub sub -, Mul mul *, Div div /);

impl<T: Element> Neg for Number<T> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Number(-self.0)
    }
}

impl<T: Element> Scalar for Var<T> {
    fn constant(value: f64) -> Self {
        Var::constant(Tensor::scalar(T::from_f64_lossy(value)))
    }
    fn exp(&self) -> Self {
        Var::exp(self)
    }
    fn ln(&self) -> Self {
        Var::log(self)
    }
    fn sqrt(&self) -> Self {
        Var::sqrt(self)
    }
    fn tanh(&self) -> Self {
        Var::tanh(self)
    }
    fn sigmoid(&self) -> Self {
        Var::sigmoid(self)
    }
}

/// A dual number: a value and its derivatives with respect to `N` inputs (forward-mode
/// differentiation, one element at a time). A derivative that is zero by construction (the
/// value does not depend on that input) is `None`, not a zero: multiplied by an infinite
/// slope, a zero would give NaN where the separate ops give no gradient at all (∂(eˣ + y)/∂y
/// at x = 1000). The pattern of `None`s is fixed by the code, so once inlined the compiler
/// folds it away.
#[derive(Clone)]
struct Dual<S, const N: usize> {
    value: S,
    tangent: [Option<S>; N],
}

impl<S: Scalar, const N: usize> From<S> for Dual<S, N> {
    /// A value that depends on none of the inputs.
    #[inline(always)]
    fn from(value: S) -> Self {
        Dual {
            value,
            tangent: [const { None }; N],
        }
    }
}

impl<S: Scalar, const N: usize> Dual<S, N> {
    /// Input `j`: its derivative is 1 with respect to itself and 0 to the others.
    #[inline(always)]
    fn seed(value: S, j: usize) -> Self {
        let mut tangent = [const { None }; N];
        tangent[j] = Some(S::constant(1.0));
        Dual { value, tangent }
    }

    /// The chain rule for a function of one argument whose derivative here is `slope`.
    #[inline(always)]
    fn chain(value: S, tangent: [Option<S>; N], slope: S) -> Self {
        Dual {
            value,
            tangent: map_each(tangent, |d| d * slope.clone()),
        }
    }
}

/// `f` applied to every derivative that is not zero by construction. A loop over the array in
/// place, for the reason [`combine`] gives.
#[inline(always)]
fn map_each<S, const N: usize>(mut tangent: [Option<S>; N], f: impl Fn(S) -> S) -> [Option<S>; N] {
    for d in &mut tangent {
        *d = d.take().map(&f);
    }
    tangent
}

/// The derivatives of a binary operation from its operands': `both` where both depend on an
/// input, `left` or `right` where only one does.
#[inline(always)]
fn combine<S: Clone, const N: usize>(
    a: [Option<S>; N],
    b: [Option<S>; N],
    both: impl Fn(S, S) -> S,
    left: impl Fn(S) -> S,
    right: impl Fn(S) -> S,
) -> [Option<S>; N] {
    // A loop over the array in place: `std::array::from_fn` and `map` were left as calls here,
    // and the loop over the elements around them was not vectorized.
    let mut out = a;
    for (d, db) in out.iter_mut().zip(b) {
        *d = match (d.take(), db) {
            (Some(x), Some(y)) => Some(both(x, y)),
            (Some(x), None) => Some(left(x)),
            (None, Some(y)) => Some(right(y)),
            (None, None) => None,
        };
    }
    out
}

impl<S: Scalar, const N: usize> Add for Dual<S, N> {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        Dual {
            value: self.value + rhs.value,
            tangent: combine(self.tangent, rhs.tangent, |a, b| a + b, |a| a, |b| b),
        }
    }
}

impl<S: Scalar, const N: usize> Sub for Dual<S, N> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        Dual {
            value: self.value - rhs.value,
            tangent: combine(self.tangent, rhs.tangent, |a, b| a - b, |a| a, |b| -b),
        }
    }
}

// The product and quotient rules add and subtract: that is the derivative, not a slip.
#[allow(clippy::suspicious_arithmetic_impl)]
impl<S: Scalar, const N: usize> Mul for Dual<S, N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        let (a, b) = (self.value, rhs.value);
        let tangent = combine(
            self.tangent,
            rhs.tangent,
            |da, db| da * b.clone() + a.clone() * db,
            |da| da * b.clone(),
            |db| a.clone() * db,
        );
        Dual {
            value: a * b,
            tangent,
        }
    }
}

#[allow(clippy::suspicious_arithmetic_impl)]
impl<S: Scalar, const N: usize> Div for Dual<S, N> {
    type Output = Self;
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        let quotient = self.value / rhs.value.clone();
        let divisor = rhs.value;
        let tangent = combine(
            self.tangent,
            rhs.tangent,
            |da, db| (da - quotient.clone() * db) / divisor.clone(),
            |da| da / divisor.clone(),
            |db| -(quotient.clone() * db) / divisor.clone(),
        );
        Dual {
            value: quotient,
            tangent,
        }
    }
}

impl<S: Scalar, const N: usize> Neg for Dual<S, N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Dual {
            value: -self.value,
            tangent: map_each(self.tangent, |d| -d),
        }
    }
}

impl<S: Scalar, const N: usize> Scalar for Dual<S, N> {
    #[inline(always)]
    fn constant(value: f64) -> Self {
        Dual::from(S::constant(value))
    }
    #[inline(always)]
    fn exp(&self) -> Self {
        let y = self.value.exp();
        Self::chain(y.clone(), self.tangent.clone(), y)
    }
    #[inline(always)]
    fn ln(&self) -> Self {
        let slope = S::constant(1.0) / self.value.clone();
        Self::chain(self.value.ln(), self.tangent.clone(), slope)
    }
    #[inline(always)]
    fn sqrt(&self) -> Self {
        let y = self.value.sqrt();
        let slope = S::constant(0.5) / y.clone();
        Self::chain(y, self.tangent.clone(), slope)
    }
    #[inline(always)]
    fn tanh(&self) -> Self {
        let y = self.value.tanh();
        let slope = S::constant(1.0) - y.clone() * y.clone();
        Self::chain(y, self.tangent.clone(), slope)
    }
    #[inline(always)]
    fn sigmoid(&self) -> Self {
        let y = self.value.sigmoid();
        let slope = y.clone() * (S::constant(1.0) - y.clone());
        Self::chain(y, self.tangent.clone(), slope)
    }
}
