//! [`Module`]: what every layer with parameters shares — its named parameters and its mode.

use autograd::Parameter;
use tensor::Element;

/// A layer or model with named parameters and a training/evaluation mode (PyTorch's
/// `nn.Module`, reduced to what tapeloop needs).
pub trait Module<T: Element> {
    /// Every parameter under a unique, stable name (PyTorch's `state_dict` keys).
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)>;

    /// Switches training mode (dropout active) on or off.
    fn set_training(&self, _training: bool) {}

    /// True in training mode.
    fn is_training(&self) -> bool {
        true
    }

    /// The parameters without names.
    fn parameters(&self) -> Vec<Parameter<T>> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for (_, p) in self.named_parameters() {
            p.zero_grad();
        }
    }

    /// Total number of parameter elements.
    fn parameter_count(&self) -> usize {
        self.named_parameters().iter().map(|(_, p)| p.len()).sum()
    }
}
