//! Layers beside the recurrent ones, losses, and the glue that makes a model out of layers.
//!
//! [`Linear`], [`Embedding`], [`Dropout`] and [`LayerNorm`] carry PyTorch's parameter names and
//! default initializations, so their weights move between the two unchanged. A model made of
//! several layers implements [`Module`] in a few lines with [`named_children`] (which prefixes
//! each child's names as PyTorch does, `decoder.weight`) and [`set_training_all`]:
//!
//! ```
//! use tapeloop_rnn::nn::{self, Embedding, Linear};
//! use tapeloop_rnn::{Lstm, Module, Parameter, RecurrentConfig, seeded_rng};
//!
//! /// A character-level language model: embed, run an LSTM, project to the vocabulary.
//! struct CharModel {
//!     embedding: Embedding<f32>,
//!     lstm: Lstm<f32>,
//!     decoder: Linear<f32>,
//! }
//!
//! impl Module<f32> for CharModel {
//!     fn named_parameters(&self) -> Vec<(String, Parameter<f32>)> {
//!         nn::named_children(&[
//!             ("embedding", &self.embedding),
//!             ("lstm", &self.lstm),
//!             ("decoder", &self.decoder),
//!         ])
//!     }
//!     fn set_training(&self, training: bool) {
//!         nn::set_training_all(&[&self.embedding, &self.lstm, &self.decoder], training);
//!     }
//!     fn is_training(&self) -> bool {
//!         self.lstm.is_training()
//!     }
//! }
//!
//! let mut rng = seeded_rng(0);
//! let model = CharModel {
//!     embedding: Embedding::new(27, 8, None, &mut rng),
//!     lstm: Lstm::lstm(&RecurrentConfig::new(8, 16), 0, &mut rng),
//!     decoder: Linear::new(16, 27, true, &mut rng),
//! };
//! let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names[0], "embedding.weight");
//! assert_eq!(names[1], "lstm.weight_ih_l0");
//! assert_eq!(names.last().unwrap(), "decoder.bias");
//! model.set_training(false);
//! assert!(!model.is_training());
//! ```
//!
//! Saving and loading the parameters of any [`Module`] goes through
//! [`io::save_module`](crate::io::save_module) and [`io::load_module`](crate::io::load_module)
//! (safetensors, PyTorch's `state_dict` keys).

mod dropout;
mod embedding;
mod layer_norm;
mod linear;
pub mod loss;

pub use dropout::Dropout;
pub use embedding::Embedding;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use loss::{CrossEntropyOptions, Reduction, bce_with_logits, cross_entropy, mse, nll};

use autograd::Parameter;
use tensor::Element;

use crate::module::Module;

/// A child module's parameters with `prefix.` in front of each name (PyTorch's naming of
/// submodules: `decoder.weight`). An empty prefix leaves the names as they are.
///
/// ```
/// use tapeloop_rnn::nn::{Linear, prefixed};
/// use tapeloop_rnn::seeded_rng;
///
/// let decoder = Linear::<f64>::new(4, 2, true, &mut seeded_rng(0));
/// let names: Vec<String> = prefixed("decoder", &decoder).into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["decoder.weight", "decoder.bias"]);
/// ```
pub fn prefixed<T: Element>(prefix: &str, module: &dyn Module<T>) -> Vec<(String, Parameter<T>)> {
    module
        .named_parameters()
        .into_iter()
        .map(|(name, p)| {
            if prefix.is_empty() {
                (name, p)
            } else {
                (format!("{prefix}.{name}"), p)
            }
        })
        .collect()
}

/// The parameters of several named children, each prefixed with its name, in the order given:
/// the body of a composite model's [`Module::named_parameters`].
pub fn named_children<T: Element>(
    children: &[(&str, &dyn Module<T>)],
) -> Vec<(String, Parameter<T>)> {
    children
        .iter()
        .flat_map(|(prefix, child)| prefixed(prefix, *child))
        .collect()
}

/// Switches every child to training (`true`) or evaluation (`false`) mode: the body of a
/// composite model's [`Module::set_training`].
pub fn set_training_all<T: Element>(children: &[&dyn Module<T>], training: bool) {
    for child in children {
        child.set_training(training);
    }
}
