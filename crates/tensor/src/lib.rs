//! Strided CPU tensors for tapeloop.
//!
//! A [`Tensor`] is a [`Layout`] (shape, strides, offset) over shared storage of `f32` or `f64`.
//! Views (transpose, permute, narrow, select, broadcast, reshape, squeeze, unsqueeze, split)
//! copy nothing; kernels walk contiguous runs so the compiler vectorizes them, and large
//! elementwise ops split across threads. Matrix multiplication hands strided operands straight
//! to a tuned GEMM (the `gemm` crate). Large ops are shared between the calling thread and
//! helper threads ([`set_num_threads`]).
//!
//! This crate knows nothing of gradients: `tapeloop-autograd` builds on it.
//!
//! ```
//! use tapeloop_tensor::{Tensor, seeded_rng};
//! let mut rng = seeded_rng(0);
//! let x = Tensor::<f32>::randn(&[4, 3], &mut rng);
//! let w = Tensor::<f32>::randn(&[5, 3], &mut rng);
//! let b = Tensor::<f32>::zeros(&[5]);
//! // x Wᵀ + b, with Wᵀ a view and b broadcast over the rows.
//! let y = x.matmul(&w.t()).add(&b).tanh();
//! assert_eq!(y.shape(), &[4, 5]);
//! let probabilities = y.softmax(-1);
//! assert!((probabilities.sum(&[-1], false).to_vec()[0] - 1.0).abs() < 1e-6);
//! ```
//!
//! Every op that can fail on shapes has a `try_` form returning [`TensorError`]; the plain form
//! panics with the same message.

mod display;
mod element;
mod error;
mod layout;
mod macros;
mod ops;
mod parallel;
mod random;
mod tensor;

pub use element::Element;
pub use error::{Result, TensorError};
pub use layout::{
    Layout, Shape, broadcast_shapes, contiguous_strides, element_count, normalize_dim,
};
pub use ops::approx;
pub use ops::elementwise::PARALLEL_THRESHOLD;
pub use ops::fused::ElementKernel;
pub use ops::index::Indices;
pub use ops::join::{Pieces, chunk_pieces, split_pieces};
pub use parallel::{THREADS_VARIABLE, num_threads, set_num_threads, threads_from_environment};
pub use random::{TensorRng, seeded_rng};
pub use tensor::Tensor;
