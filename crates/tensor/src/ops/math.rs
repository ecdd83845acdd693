//! The public elementwise operations: unary functions, broadcasting binary arithmetic, scalar
//! forms, comparisons (masks of 0 and 1), `where_cond` and `clamp`, and the `+ - * /` operators.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::Element;
use crate::error::Result;
use crate::macros::panicking_forms;
use crate::ops::approx;
use crate::ops::elementwise::{map, zip, zip3};
use crate::tensor::Tensor;

macro_rules! unary_ops {
    ($( $(#[$meta:meta])* $name:ident => |$x:ident| $body:expr; )*) => {
        $(
            $(#[$meta])*
            pub fn $name(&self) -> Self {
                map(self, |$x: T| $body)
            }
        )*
    };
}

macro_rules! binary_ops {
    ($( $(#[$meta:meta])* $name:ident / $try_name:ident => |$a:ident, $b:ident| $body:expr; )*) => {
        $(
            $(#[$meta])*
            pub fn $try_name(&self, other: &Self) -> Result<Self> {
                zip(stringify!($name), self, other, |$a: T, $b: T| $body)
            }
        )*
        panicking_forms! {
            $(
                $(#[$meta])*
                fn $name => $try_name(other: &Self) -> Self;
            )*
        }
    };
}

impl<T: Element> Tensor<T> {
    unary_ops! {
        /// `-x`.
        neg => |x| -x;
        /// `eˣ`.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// assert_eq!(Tensor::<f64>::zeros(&[2]).exp().to_vec(), vec![1.0, 1.0]);
        /// ```
        exp => |x| x.exp();
        /// Natural logarithm (`-inf` at 0, NaN below).
        log => |x| x.ln();
        /// Hyperbolic tangent (a vectorized rational approximation for `f32`, a few ulp).
        tanh => |x| approx::tanh(x);
        /// Logistic sigmoid `1 / (1 + e⁻ˣ)` (vectorized for `f32`, a few ulp).
        sigmoid => |x| approx::sigmoid(x);
        /// `max(x, 0)`; NaN stays NaN, as in PyTorch (written as `x < 0` so a NaN, which
        /// compares false, passes through).
        relu => |x| if x < T::zero() { T::zero() } else { x };
        /// Square root.
        sqrt => |x| x.sqrt();
        /// Absolute value.
        abs => |x| x.abs();
        /// `1 / x`.
        recip => |x| x.recip();
        /// `x²`.
        square => |x| x * x;
        /// The sign: -1, 0 or 1.
        sign => |x| Element::sign(x);
    }

    /// `xᵖ` for a scalar exponent.
    pub fn powf(&self, exponent: T) -> Self {
        map(self, |x| x.powf(exponent))
    }

    /// Applies any function elementwise (a user's own activation, say).
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f32>::from_vec(vec![1.0, -2.0], &[2]);
    /// assert_eq!(a.map(|x| 3.0 * x).to_vec(), vec![3.0, -6.0]);
    /// ```
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        map(self, f)
    }

    /// Applies a function to pairs of elements after broadcasting.
    pub fn try_zip_map(&self, other: &Self, f: impl Fn(T, T) -> T + Sync + Send) -> Result<Self> {
        zip("zip_map", self, other, f)
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: T) -> Self {
        map(self, |x| x + s)
    }

    /// `x · s`.
    pub fn mul_scalar(&self, s: T) -> Self {
        map(self, |x| x * s)
    }

    /// Clamps every element into `[min, max]`; NaN stays NaN, as in PyTorch.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f32>::from_vec(vec![-2.0, 0.5, 3.0], &[3]);
    /// assert_eq!(a.clamp(-1.0, 1.0).to_vec(), vec![-1.0, 0.5, 1.0]);
    /// ```
    pub fn clamp(&self, min: T, max: T) -> Self {
        // Not `x.max(min).min(max)`: `f32::max` returns the other operand for a NaN, which
        // would turn NaN into `min`.
        map(self, |x| {
            if x < min {
                min
            } else if x > max {
                max
            } else {
                x
            }
        })
    }

    binary_ops! {
        /// `a + b` with broadcasting.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        /// let row = Tensor::<f32>::from_vec(vec![10.0, 20.0], &[2]);
        /// assert_eq!(a.add(&row).to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
        /// ```
        add / try_add => |a, b| a + b;
        /// `a - b` with broadcasting.
        sub / try_sub => |a, b| a - b;
        /// `a · b` (elementwise) with broadcasting.
        mul / try_mul => |a, b| a * b;
        /// `a / b` with broadcasting.
        div / try_div => |a, b| a / b;
        /// Elementwise maximum with broadcasting (NaN wins, as in PyTorch).
        maximum / try_maximum => |a, b| if a.is_nan() || a > b { a } else { b };
        /// Elementwise minimum with broadcasting (NaN wins, as in PyTorch).
        minimum / try_minimum => |a, b| if a.is_nan() || a < b { a } else { b };
        /// `aᵇ` with broadcasting.
        pow / try_pow => |a, b| a.powf(b);
        /// Mask (1 or 0) of `a == b`.
        eq_mask / try_eq_mask => |a, b| if a == b { T::one() } else { T::zero() };
        /// Mask (1 or 0) of `a != b`.
        ne_mask / try_ne_mask => |a, b| if a != b { T::one() } else { T::zero() };
        /// Mask (1 or 0) of `a < b`.
        lt_mask / try_lt_mask => |a, b| if a < b { T::one() } else { T::zero() };
        /// Mask (1 or 0) of `a <= b`.
        le_mask / try_le_mask => |a, b| if a <= b { T::one() } else { T::zero() };
        /// Mask (1 or 0) of `a > b`.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::from_vec(vec![1.0, 5.0], &[2]);
        /// assert_eq!(a.gt_mask(&Tensor::scalar(2.0)).to_vec(), vec![0.0, 1.0]);
        /// ```
        gt_mask / try_gt_mask => |a, b| if a > b { T::one() } else { T::zero() };
        /// Mask (1 or 0) of `a >= b`.
        ge_mask / try_ge_mask => |a, b| if a >= b { T::one() } else { T::zero() };
    }

    /// Picks `if_true` where `self` (a mask) is non-zero and `if_false` elsewhere, broadcasting
    /// all three (PyTorch's `torch.where(cond, a, b)`).
    pub fn try_where_cond(&self, if_true: &Self, if_false: &Self) -> Result<Self> {
        zip3("where", self, if_true, if_false, |c, a, b| {
            if c != T::zero() { a } else { b }
        })
    }

    panicking_forms! {
        /// Picks `if_true` where `self` is non-zero, else `if_false` (broadcasting); panics when
        /// the shapes do not broadcast.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let mask = Tensor::<f32>::from_vec(vec![1.0, 0.0], &[2]);
        /// let picked = mask.where_cond(&Tensor::scalar(7.0), &Tensor::from_vec(vec![1.0, 2.0], &[2]));
        /// assert_eq!(picked.to_vec(), vec![7.0, 2.0]);
        /// ```
        fn where_cond => try_where_cond(if_true: &Self, if_false: &Self) -> Self;
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $tensor_method:ident, $scalar:expr) => {
        impl<T: Element> $trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                Tensor::$tensor_method(self, rhs)
            }
        }
        impl<T: Element> $trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                Tensor::$tensor_method(&self, &rhs)
            }
        }
        impl<T: Element> $trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                let f: fn(T, T) -> T = $scalar;
                map(self, move |x| f(x, rhs))
            }
        }
    };
}

operator!(Add, add, add, |x, s| x + s);
operator!(Sub, sub, sub, |x, s| x - s);
operator!(Mul, mul, mul, |x, s| x * s);
operator!(Div, div, div, |x, s| x / s);

impl<T: Element> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}
