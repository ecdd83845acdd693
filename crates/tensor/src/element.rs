//! The element types a [`Tensor`](crate::Tensor) can hold: `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

/// A floating-point element type: `f32` or `f64`.
///
/// Everything numeric in tapeloop is generic over this trait. Besides the arithmetic from
/// [`num_traits::Float`], it knows its name (for display and error messages) and how to call the
/// GEMM kernel for its precision.
///
/// ```
/// use tapeloop_tensor::Element;
/// assert_eq!(<f32 as Element>::DTYPE, "f32");
/// assert_eq!(<f64 as Element>::from_f64_lossy(0.5), 0.5f64);
/// ```
pub trait Element:
    Float
    + FromPrimitive
    + ToPrimitive
    + NumAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// The name PyTorch-style displays use: `"f32"` or `"f64"`.
    const DTYPE: &'static str;

    /// Converts an `f64` constant, rounding to the nearest representable value.
    fn from_f64_lossy(value: f64) -> Self;

    /// Converts to `f64` exactly (widening) or losslessly.
    fn to_f64_lossy(self) -> f64;

    /// `C ← alpha·A·B + beta·C` on strided matrices, as `matrixmultiply` defines it.
    ///
    /// # Safety
    /// Every pointer plus every in-bounds combination of row and column strides must stay
    /// inside its allocation: `a` addresses `m × k`, `b` addresses `k × n` and `c` addresses
    /// `m × n` elements, and `c` must not overlap `a` or `b` or itself.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        a_strides: [isize; 2],
        b: *const Self,
        b_strides: [isize; 2],
        beta: Self,
        c: *mut Self,
        c_strides: [isize; 2],
    );
}

impl Element for f32 {
    const DTYPE: &'static str = "f32";

    fn from_f64_lossy(value: f64) -> Self {
        value as f32
    }

    fn to_f64_lossy(self) -> f64 {
        self as f64
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        a_strides: [isize; 2],
        b: *const f32,
        b_strides: [isize; 2],
        beta: f32,
        c: *mut f32,
        c_strides: [isize; 2],
    ) {
        // SAFETY: the caller upholds the bounds contract documented on the trait method, which is
        // exactly matrixmultiply's contract.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a,
                a_strides[0],
                a_strides[1],
                b,
                b_strides[0],
                b_strides[1],
                beta,
                c,
                c_strides[0],
                c_strides[1],
            )
        }
    }
}

impl Element for f64 {
    const DTYPE: &'static str = "f64";

    fn from_f64_lossy(value: f64) -> Self {
        value
    }

    fn to_f64_lossy(self) -> f64 {
        self
    }

    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        a_strides: [isize; 2],
        b: *const f64,
        b_strides: [isize; 2],
        beta: f64,
        c: *mut f64,
        c_strides: [isize; 2],
    ) {
        // SAFETY: the caller upholds the bounds contract documented on the trait method, which is
        // exactly matrixmultiply's contract.
        unsafe {
            matrixmultiply::dgemm(
                m,
                k,
                n,
                alpha,
                a,
                a_strides[0],
                a_strides[1],
                b,
                b_strides[0],
                b_strides[1],
                beta,
                c,
                c_strides[0],
                c_strides[1],
            )
        }
    }
}
