//! Tape-based reverse-mode automatic differentiation over tapeloop tensors.
//!
//! Write a model as ordinary Rust with operator syntax on [`Var`]s, call
//! [`backward`](Var::backward) once, and read the gradient of anything. Every op records a node
//! numbered by its position on the tape (a Wengert list); backward replays the reachable part of
//! the tape in reverse, summing the gradients of a variable used several times — which is all
//! backprop through time needs, so no recurrent code lives here.
//!
//! Backward rules are written with the same differentiable ops, so a backward pass run with
//! [`BackwardOptions::create_graph`] is itself recorded: Hessian-vector products, gradient
//! penalties and meta-learning are two calls (see [`grad`]).
//!
//! # Persistent parameters, one graph per iteration
//!
//! [`Parameter`]s live across iterations; each iteration builds its graph from them, runs
//! backward, updates them, and drops the graph. Memory stays flat over any number of
//! iterations.
//!
//! ```
//! use tapeloop_autograd::{Parameter, Var, Tensor, seeded_rng};
//!
//! let mut rng = seeded_rng(0);
//! let w = Parameter::new(Tensor::<f64>::randn(&[1, 3], &mut rng));
//! let x = Tensor::<f64>::randn(&[32, 3], &mut rng);
//! let target = x.matmul(&Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3, 1]));
//! for _ in 0..200 {
//!     // This iteration's graph: built from the parameter, freed when `loss` drops.
//!     let prediction = Var::constant(x.clone()).matmul(&w.var().t());
//!     let loss = (&prediction - &Var::constant(target.clone())).square().mean(&[], false);
//!     loss.backward().unwrap();
//!     let step = w.grad().unwrap().mul_scalar(-0.1);
//!     w.update(|value| value.add_assign(&step));
//!     w.zero_grad();
//! }
//! assert!((w.value().to_vec()[1] + 2.0f64).abs() < 1e-3);
//! ```
//!
//! # Checking gradients
//!
//! [`gradcheck`] and [`gradgradcheck`] compare the tape against finite differences in `f64`;
//! with the `proptest` feature, the `strategies` module generates shapes and well-conditioned
//! values for property tests of a new op or cell.

mod deferred;
mod engine;
mod error;
mod gradcheck;
mod mode;
mod node;
mod ops;
mod parameter;
mod slices;
#[cfg(feature = "proptest")]
pub mod strategies;
mod var;

pub use engine::{BackwardOptions, grad};
pub use error::{AnomalyReport, AutogradError};
pub use gradcheck::{
    CheckOutputs, GradcheckError, GradcheckMismatch, GradcheckOptions, GradcheckReport, gradcheck,
    gradgradcheck,
};
pub use mode::{
    GradModeGuard, detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad,
    set_anomaly_enabled, take_first_anomaly,
};
pub use node::{BackwardContext, Gradients, Hook, live_nodes};
pub use ops::fused::{Elementwise, Scalar};
pub use parameter::Parameter;
/// The tensor crate, re-exported so one import serves both layers.
pub use tensor::{self, Element, Indices, Tensor, TensorError, seeded_rng};
pub use var::{Var, gradients};
