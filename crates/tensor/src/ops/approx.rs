//! Vectorizable `tanh` and sigmoid for `f32`.
//!
//! The math library's `tanhf` is a scalar call per element, which keeps LLVM from vectorizing
//! the loop; in an LSTM step it was most of the elementwise time. For `f32` a rational
//! approximation (the one Eigen uses) built from multiplies, adds, one divide and a clamp is
//! accurate to a few units in the last place and compiles to SIMD code. `f64` keeps the exact
//! library functions.

use crate::element::Element;

/// Past this magnitude `tanh` is ±1 in `f32`.
const TANH_CLAMP: f64 = 7.905_311_2;
/// Numerator coefficients (odd powers 1..13) and denominator (even powers 0..6).
const ALPHA: [f64; 7] = [
    4.893_524_558_917_86e-3,
    6.372_619_288_754_36e-4,
    1.485_722_357_179_79e-5,
    5.122_297_090_371_14e-8,
    -8.604_671_522_137_35e-11,
    2.000_187_904_824_77e-13,
    -2.760_768_477_423_55e-16,
];
const BETA: [f64; 4] = [
    4.893_525_185_543_85e-3,
    2.268_434_632_439_00e-3,
    1.185_347_056_866_54e-4,
    1.198_258_394_667_02e-6,
];

/// True when `T` is `f32`: a compile-time constant after monomorphization.
#[inline(always)]
fn is_f32<T: Element>() -> bool {
    std::mem::size_of::<T>() == 4
}

/// `tanh(x)`: the rational approximation for `f32`, the library function for `f64` — what
/// [`Tensor::tanh`](crate::Tensor::tanh) computes for each element.
///
/// ```
/// let y = tapeloop_tensor::approx::tanh(0.5f32);
/// assert!((y - 0.5f32.tanh()).abs() < 1e-6);
/// ```
#[inline(always)]
pub fn tanh<T: Element>(x: T) -> T {
    if !is_f32::<T>() {
        return x.tanh();
    }
    let c = T::from_f64_lossy;
    let input = x;
    let x = x.max(c(-TANH_CLAMP)).min(c(TANH_CLAMP));
    let x2 = x * x;
    let mut p = c(ALPHA[6]);
    for &a in ALPHA[..6].iter().rev() {
        p = p * x2 + c(a);
    }
    let p = p * x;
    let mut q = c(BETA[3]);
    for &b in BETA[..3].iter().rev() {
        q = q * x2 + c(b);
    }
    // The clamp would turn NaN into ±1; keep it NaN (a select, so the loop still vectorizes).
    if input.is_nan() { input } else { p / q }
}

/// `1 / (1 + e⁻ˣ)`, as `½ + ½·tanh(x/2)` for `f32` (vectorizable). The error is absolute,
/// at most 5e-7: for x below about −15, where the true value is under 3e-7, the result is not
/// relatively accurate. Gates do not care; a loss that needs `log σ(x)` should use a stable
/// form such as `bce_with_logits`, which does not go through this function.
///
/// ```
/// assert_eq!(tapeloop_tensor::approx::sigmoid(0.0f32), 0.5);
/// ```
#[inline(always)]
pub fn sigmoid<T: Element>(x: T) -> T {
    if !is_f32::<T>() {
        return T::one() / (T::one() + (-x).exp());
    }
    let half = T::from_f64_lossy(0.5);
    half + half * tanh(x * half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_tanh_and_sigmoid_are_within_a_few_ulp() {
        let (mut worst_tanh, mut worst_sigmoid) = (0.0f64, 0.0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // −20 … 20
            let exact = (x as f64).tanh();
            worst_tanh = worst_tanh.max((tanh(x) as f64 - exact).abs());
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            worst_sigmoid = worst_sigmoid.max((sigmoid(x) as f64 - exact).abs());
        }
        assert!(worst_tanh < 5e-7, "tanh error {worst_tanh:e}");
        assert!(worst_sigmoid < 5e-7, "sigmoid error {worst_sigmoid:e}");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn f64_uses_the_exact_functions() {
        assert_eq!(tanh(0.3f64), 0.3f64.tanh());
        assert_eq!(sigmoid(0.3f64), 1.0 / (1.0 + (-0.3f64).exp()));
    }
}
