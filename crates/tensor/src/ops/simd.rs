//! The innermost elementwise loops, compiled for the CPU's widest vectors and chosen at run time.
//!
//! A release build targets baseline x86-64, whose vectors hold four `f32`s (SSE2). The same loop
//! compiled with AVX-512 holds sixteen and has fused multiply-adds: the `f32` tanh and sigmoid of
//! an LSTM's gates ran at 1.7 ns per element as SSE2 code. Each loop here is written once as a
//! plain slice loop and instantiated three times — AVX-512, AVX2 with FMA, and the baseline —
//! and the first one the CPU supports runs (the check is a cached flag).

use std::mem::MaybeUninit;

use crate::ops::fused::ElementKernel;

/// Defines `$name`, which runs `$body` (a plain loop over the arguments) compiled for the best
/// instruction set available.
macro_rules! dispatched {
    (
        $(#[$doc:meta])*
        fn $name:ident<$t:ident, $f:ident: $bound:path $(, const $c:ident: usize)*>(
            $($arg:ident: $ty:ty),* $(,)?
        ) $body:block
    ) => {
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name<$t: Copy, $f: $bound $(, const $c: usize)*>($($arg: $ty),*) {
            #[inline(always)]
            fn plain<$t: Copy, $f: $bound $(, const $c: usize)*>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512<$t: Copy, $f: $bound $(, const $c: usize)*>($($arg: $ty),*) {
                    plain($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$t: Copy, $f: $bound $(, const $c: usize)*>($($arg: $ty),*) {
                    plain($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has every feature `avx512` is compiled with (checked just
                    // above); the loop itself is safe code.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above, for AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            plain($($arg),*)
        }
    };
}

dispatched! {
    /// `dst[i] = f(src[i])`.
    fn unary<T, F: Fn(T) -> T>(dst: &mut [MaybeUninit<T>], src: &[T], f: &F) {
        for (d, &s) in dst.iter_mut().zip(src) {
            d.write(f(s));
        }
    }
}

dispatched! {
    /// `dst[i] = f(a[i], b[i])`.
    fn binary<T, F: Fn(T, T) -> T>(dst: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: &F) {
        for ((d, &p), &q) in dst.iter_mut().zip(a).zip(b) {
            d.write(f(p, q));
        }
    }
}

dispatched! {
    /// `dst[i] = f(a[i], q)`: the right operand broadcast along the run.
    fn binary_with_right<T, F: Fn(T, T) -> T>(dst: &mut [MaybeUninit<T>], a: &[T], q: T, f: &F) {
        for (d, &p) in dst.iter_mut().zip(a) {
            d.write(f(p, q));
        }
    }
}

dispatched! {
    /// `dst[i] = f(p, b[i])`: the left operand broadcast along the run.
    fn binary_with_left<T, F: Fn(T, T) -> T>(dst: &mut [MaybeUninit<T>], p: T, b: &[T], f: &F) {
        for (d, &q) in dst.iter_mut().zip(b) {
            d.write(f(p, q));
        }
    }
}

dispatched! {
    /// `dst[m][i] = f([xs[0][i], …, xs[N − 1][i]], w[i])[m]` for the `M` results of an
    /// elementwise function of `N` operands and a weight (see `fused`).
    fn elements<T, F: ElementKernel<T, N, M>, const N: usize, const M: usize>(
        dst: [&mut [MaybeUninit<T>]; M],
        xs: [&[T]; N],
        w: &[T],
        f: &F,
    ) {
        let len = w.len();
        // Slices of exactly `len` let LLVM drop the bounds checks and vectorize the loop.
        let mut dst = dst.map(|d| &mut d[..len]);
        let xs = xs.map(|x| &x[..len]);
        for i in 0..len {
            let y = f.at(std::array::from_fn(|j| xs[j][i]), w[i]);
            for (d, y) in dst.iter_mut().zip(y) {
                d[i].write(y);
            }
        }
    }
}

dispatched! {
    /// `dst[i] = f(dst[i], src[i])`, in place.
    fn assign<T, F: Fn(T, T) -> T>(dst: &mut [T], src: &[T], f: &F) {
        for (x, &y) in dst.iter_mut().zip(src) {
            *x = f(*x, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loop_writes_every_element() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..37).map(|i| 2.0 * i as f32).collect();
        let mut out = vec![MaybeUninit::<f32>::uninit(); 37];
        let read = |out: &[MaybeUninit<f32>]| -> Vec<f32> {
            // SAFETY: each test below writes all 37 elements before reading them.
            out.iter().map(|x| unsafe { x.assume_init() }).collect()
        };
        unary(&mut out, &a, &|x| x + 1.0);
        assert_eq!(read(&out), (1..38).map(|i| i as f32).collect::<Vec<_>>());
        binary(&mut out, &a, &b, &|x, y| y - x);
        assert_eq!(read(&out), a);
        binary_with_right(&mut out, &a, 3.0, &|x, y| x * y);
        assert_eq!(read(&out), a.iter().map(|x| 3.0 * x).collect::<Vec<_>>());
        binary_with_left(&mut out, 1.0, &b, &|x, y| x - y);
        assert_eq!(read(&out), b.iter().map(|y| 1.0 - y).collect::<Vec<_>>());
        let mut acc = a.clone();
        assign(&mut acc, &b, &|x, y| x + y);
        assert_eq!(acc, a.iter().map(|x| 3.0 * x).collect::<Vec<_>>());
    }
}
