//! Operations on tensors, one family per file.

mod approx;
pub(crate) mod elementwise;
pub mod index;
pub(crate) mod inplace;
pub(crate) mod join;
mod math;
mod matmul;
mod reduce;
mod simd;
pub(crate) mod transpose;
mod view;
