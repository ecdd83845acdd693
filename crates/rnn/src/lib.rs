//! Recurrent layers for tapeloop: RNN, LSTM and GRU as compositions of autograd ops.
//!
//! No backward pass is written here: backprop through time comes from the tape. A cell is a
//! struct and one [`Cell::step`]; the layer machinery ([`Recurrent`]) — time loop, stacked
//! layers, bidirectionality, variable lengths, initial states, dropout between layers — is
//! written once and serves any cell, including a user's own.
//!
//! Parameters carry PyTorch's names, shapes and gate order (`weight_ih_l0`, `bias_hh_l1_reverse`,
//! LSTM gates i, f, g, o; GRU r, z, n), so a PyTorch `state_dict` saved as safetensors loads one
//! to one ([`io`]), and [`parity::check_parity`] compares against PyTorch reference cases.
//!
//! ```
//! use tapeloop_rnn::{Lstm, Module, RecurrentConfig, Var, Tensor, seeded_rng};
//!
//! let mut rng = seeded_rng(0);
//! let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(2, 8), 0, &mut rng);
//! let x = Var::constant(Tensor::randn(&[20, 4, 2], &mut rng)); // 20 steps, batch 4
//! let out = lstm.forward(&x, None, None).unwrap();
//! let loss = out.output.select(0, 19).square().mean(&[], false);
//! loss.backward().unwrap(); // BPTT over 20 steps, from the tape
//! for (name, p) in lstm.named_parameters() {
//!     assert!(p.grad().is_some(), "{name} got a gradient");
//! }
//! ```

pub mod cell;
pub mod check;
mod error;
pub mod init;
pub mod io;
mod layer;
mod module;
pub mod nn;
pub mod optim;
pub mod parity;
pub mod train;

pub use autograd::{self, Elementwise, Parameter, Scalar, Var};
pub use cell::{Cell, GruCell, LstmCell, Nonlinearity, RnnCell};
pub use error::RnnError;
pub use init::Init;
pub use layer::{Gru, Lstm, Recurrent, RecurrentConfig, RecurrentOutput, Rnn};
pub use module::Module;
pub use tensor::{self, Element, Tensor, TensorRng, seeded_rng};
