//! The element types a [`Tensor`](crate::Tensor) can hold: `f32` and `f64`.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

use crate::parallel;

/// A floating-point element type: `f32` or `f64`.
///
/// Everything numeric in tapeloop is generic over this trait. Besides the arithmetic from
/// [`num_traits::Float`], it knows its name (for display and error messages) and how to call the
/// GEMM kernel for its precision.
///
/// The trait is sealed: the kernels are written for `f32` and `f64`, and unsafe code relies on
/// what their implementations promise (that `gemm` writes every element of its output, for one).
/// An implementation for another type could break that from safe code.
///
/// ```
/// use tapeloop_tensor::Element;
/// assert_eq!(<f32 as Element>::DTYPE, "f32");
/// assert_eq!(<f64 as Element>::from_f64_lossy(0.5), 0.5f64);
/// ```
pub trait Element:
    sealed::Sealed
    + Float
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

    /// −1, 0 or 1 (0 at ±0 and NaN, unlike `signum`): [`Tensor::sign`](crate::Tensor::sign)
    /// per element, and the derivative of `|x|` as PyTorch takes it.
    fn sign(self) -> Self {
        if self > Self::zero() {
            Self::one()
        } else if self < Self::zero() {
            -Self::one()
        } else {
            Self::zero()
        }
    }

    /// `C ← alpha·A·B + beta·C` on strided matrices (`A` is `m × k`, `B` is `k × n`, `C` is
    /// `m × n`; each given by a pointer to its first element and its `[row, column]` strides in
    /// elements). When `beta` is zero, `C` is only written, never read, so it may hold anything.
    ///
    /// Runs the `gemm` crate's kernels (AVX-512 where the CPU has it, chosen at run time), split
    /// across threads ([`crate::num_threads`]) when the product is large.
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

/// Keeps [`Element`] to the types whose implementations the crate's unsafe code can trust.
mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
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
        // SAFETY: the caller upholds the contract of `Element::gemm`, which is `gemm_threaded`'s.
        unsafe {
            gemm_threaded(
                m, k, n, alpha, a, a_strides, b, b_strides, beta, c, c_strides,
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
        // SAFETY: the caller upholds the contract of `Element::gemm`, which is `gemm_threaded`'s.
        unsafe {
            gemm_threaded(
                m, k, n, alpha, a, a_strides, b, b_strides, beta, c, c_strides,
            )
        }
    }
}

/// Products with fewer multiply-adds than this run on the calling thread (the `gemm` crate's
/// own threading threshold).
const GEMM_THREADING_THRESHOLD: usize = 48 * 48 * 256;

/// `C ← alpha·A·B + beta·C` through the `gemm` crate, with the output split into one block of
/// rows or columns per thread ([`parallel`]), each block a single-threaded `gemm` call.
///
/// Splitting ourselves rather than passing `gemm::Parallelism::Rayon` measured faster on this
/// project's shapes (f32, 2 threads, medians of five interleaved runs): 64×512·512×2048 ran at
/// 184 GFLOP/s against 85 with gemm's own threading, and 512³ and 1024³ were as fast or
/// faster. See BENCHMARKS.md, which also records the one layout where `matrixmultiply` (the
/// previous kernel) stays ahead: a small `m` with a transposed right operand.
///
/// # Safety
/// As [`Element::gemm`]: every element the strides address lies inside its allocation, and `c`
/// overlaps neither `a`, `b` nor itself.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_threaded<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    a_strides: [isize; 2],
    b: *const T,
    b_strides: [isize; 2],
    beta: T,
    c: *mut T,
    c_strides: [isize; 2],
) {
    if m == 0 || n == 0 {
        return;
    }
    // The pointers travel as addresses so the closure below is `Sync` and can run on the
    // helper threads (raw pointers are neither `Send` nor `Sync`).
    let (a, b, c) = (a as usize, b as usize, c as usize);
    // One block: C[rows, cols] from A[rows, ..] and B[.., cols].
    let block = |row: usize, rows: usize, col: usize, cols: usize| {
        let (a, b, c) = (a as *const T, b as *const T, c as *mut T);
        let (row, col) = (row as isize, col as isize);
        // SAFETY: `row + rows ≤ m` and `col + cols ≤ n`, so the offset pointers address
        // sub-matrices of A, B and C, inside their allocations by the caller's contract. Blocks
        // of C given to different threads are disjoint rows or columns, so no two calls write
        // the same element, and C overlaps neither input.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                c.offset(row * c_strides[0] + col * c_strides[1]),
                c_strides[1],
                c_strides[0],
                beta != T::zero(),
                a.offset(row * a_strides[0]),
                a_strides[1],
                a_strides[0],
                b.offset(col * b_strides[1]),
                b_strides[1],
                b_strides[0],
                // gemm's names are swapped relative to BLAS: dst ← alpha·dst + beta·lhs·rhs.
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    };
    if m.saturating_mul(n).saturating_mul(k) < GEMM_THREADING_THRESHOLD {
        block(0, m, 0, n);
        return;
    }
    let threads = parallel::num_threads();
    // Split the longer side of C into blocks that are whole multiples of 32 (kernel-friendly).
    let (split_rows, length) = if m > n { (true, m) } else { (false, n) };
    let step = length.div_ceil(threads).next_multiple_of(32);
    parallel::for_each_block(length.div_ceil(step), |index| {
        let start = index * step;
        let len = step.min(length - start);
        if split_rows {
            block(start, len, 0, n)
        } else {
            block(0, m, start, len)
        }
    });
}
