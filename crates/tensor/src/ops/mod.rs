//! Operations on tensors, one family per file.

pub mod approx;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub mod index;
pub(crate) mod inplace;
pub(crate) mod join;
mod math;
mod matmul;
mod reduce;
mod simd;
pub(crate) mod transpose;
mod view;
