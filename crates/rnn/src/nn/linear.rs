//! [`Linear`]: `y = x Wᵀ + b`, PyTorch's `nn.Linear`.

use std::cell::Cell;

use autograd::{Parameter, Var};
use tensor::{Element, Tensor, TensorRng};

use crate::error::RnnError;
use crate::init::linear_projection;
use crate::module::Module;

/// An affine map `y = x Wᵀ + b` over the last dimension (PyTorch's `nn.Linear`).
///
/// Parameters: `weight` `[out_features, in_features]` and `bias` `[out_features]`, both drawn
/// from U(−1/√in, 1/√in) as PyTorch's default initialization does.
///
/// ```
/// use tapeloop_rnn::nn::Linear;
/// use tapeloop_rnn::{Module, Tensor, Var, seeded_rng};
///
/// let layer = Linear::<f64>::new(3, 2, true, &mut seeded_rng(0));
/// let x = Var::constant(Tensor::ones(&[5, 4, 3])); // any leading dimensions
/// let y = layer.forward(&x).unwrap();
/// assert_eq!(y.shape(), &[5, 4, 2]);
/// let names: Vec<String> = layer.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["weight", "bias"]);
/// ```
pub struct Linear<T: Element> {
    /// `[out_features, in_features]`.
    pub weight: Parameter<T>,
    /// `[out_features]`, when the layer has a bias.
    pub bias: Option<Parameter<T>>,
    training: Cell<bool>,
}

impl<T: Element> Linear<T> {
    /// A layer with PyTorch's default initialization, U(−1/√in, 1/√in) for weight and bias.
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut TensorRng) -> Self {
        // PyTorch draws the weight with kaiming_uniform(a = √5), whose bound works out to
        // exactly 1/√in, and the bias with the same bound.
        let bound = if in_features == 0 {
            0.0
        } else {
            1.0 / (in_features as f64).sqrt()
        };
        let (low, high) = (T::from_f64_lossy(-bound), T::from_f64_lossy(bound));
        let weight = Tensor::rand_uniform(&[out_features, in_features], low, high, rng);
        let bias = bias.then(|| Tensor::rand_uniform(&[out_features], low, high, rng));
        Self {
            weight: Parameter::new(weight),
            bias: bias.map(Parameter::new),
            training: Cell::new(true),
        }
    }

    /// A layer from given values; the error names both shapes when they do not fit.
    pub fn from_tensors(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self, RnnError> {
        if weight.rank() != 2 {
            return Err(RnnError::Shape(format!(
                "Linear weight must be [out_features, in_features], got {:?}",
                weight.shape()
            )));
        }
        if let Some(b) = &bias
            && b.shape() != [weight.shape()[0]]
        {
            return Err(RnnError::Shape(format!(
                "Linear bias must be [{}] to match weight {:?}, got {:?}",
                weight.shape()[0],
                weight.shape(),
                b.shape()
            )));
        }
        Ok(Self {
            weight: Parameter::new(weight),
            bias: bias.map(Parameter::new),
            training: Cell::new(true),
        })
    }

    /// Features read from the last input dimension.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Features written to the last output dimension.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// `x Wᵀ + b` for `x` of shape `[…, in_features]`, giving `[…, out_features]`.
    pub fn forward(&self, x: &Var<T>) -> Result<Var<T>, RnnError> {
        let in_features = self.in_features();
        if x.rank() == 0 || x.shape()[x.rank() - 1] != in_features {
            return Err(RnnError::Shape(format!(
                "Linear expects input [..., {in_features}], got {:?}",
                x.shape()
            )));
        }
        if x.rank() == 2 {
            return Ok(linear_projection(x, &self.weight, self.bias.as_ref()));
        }
        // Fold leading dimensions into rows: one matrix multiply instead of a batched one.
        let leading = &x.shape()[..x.rank() - 1];
        let rows: usize = leading.iter().product();
        let flat = x.reshape(&[rows, in_features]);
        let projected = linear_projection(&flat, &self.weight, self.bias.as_ref());
        let mut shape = leading.to_vec();
        shape.push(self.out_features());
        Ok(projected.reshape(&shape))
    }
}

impl<T: Element> Module<T> for Linear<T> {
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        let mut out = vec![("weight".to_string(), self.weight.clone())];
        if let Some(bias) = &self.bias {
            out.push(("bias".to_string(), bias.clone()));
        }
        out
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    fn is_training(&self) -> bool {
        self.training.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::seeded_rng;

    #[test]
    fn default_init_stays_inside_pytorch_bound() {
        let layer = Linear::<f64>::new(16, 8, true, &mut seeded_rng(3));
        let bound = 0.25;
        for (name, p) in layer.named_parameters() {
            let values = p.value().to_vec();
            assert!(values.iter().all(|v| v.abs() <= bound), "{name}");
            // Spread over most of the interval, not a constant.
            let max = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(max > 0.6 * bound, "{name}: max |value| {max}");
        }
    }

    #[test]
    fn forward_matches_manual_affine_map() {
        let layer = Linear::from_tensors(
            Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]),
            Some(Tensor::from_vec(vec![0.5, -1.0], &[2])),
        )
        .unwrap();
        let x = Var::constant(Tensor::from_vec(vec![1.0, 0.0, -1.0], &[1, 1, 3]));
        let y = layer.forward(&x).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2]);
        assert_eq!(y.value().to_vec(), vec![1.0 - 3.0 + 0.5, 4.0 - 6.0 - 1.0]);
    }

    #[test]
    fn wrong_input_width_names_the_shapes() {
        let layer = Linear::<f32>::new(3, 2, false, &mut seeded_rng(0));
        let err = layer
            .forward(&Var::constant(Tensor::zeros(&[4, 5])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[..., 3]") && err.contains("[4, 5]"), "{err}");
        let err = Linear::from_tensors(Tensor::<f32>::zeros(&[2, 3]), Some(Tensor::zeros(&[3])))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
    }
}
