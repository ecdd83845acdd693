//! [`LayerNorm`]: normalize over the last dimensions, PyTorch's `nn.LayerNorm`.

use std::cell::Cell;

use autograd::{Parameter, Var};
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::module::Module;

/// Layer normalization (Ba, Kiros & Hinton 2016) over the trailing `normalized_shape`
/// dimensions:
///
/// ```text
/// y = (x − mean) / √(var + eps) · weight + bias      (var biased, as PyTorch)
/// ```
///
/// Composed from autograd ops (mean, subtraction, square, sqrt), so its gradient comes from
/// the tape. Parameters (with `elementwise_affine`): `weight` (ones) and `bias` (zeros), both
/// of `normalized_shape`. This is the piece a layer-norm LSTM cell applies to its gates.
///
/// ```
/// use tapeloop_rnn::nn::LayerNorm;
/// use tapeloop_rnn::{Tensor, Var};
///
/// let norm = LayerNorm::<f64>::new(&[4], 1e-5, true);
/// let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0], &[2, 4]));
/// let y = norm.forward(&x).unwrap().value().to_vec();
/// assert!(y[..4].iter().sum::<f64>().abs() < 1e-12); // each row has mean 0 …
/// assert!((y[..4].iter().map(|v| v * v).sum::<f64>() / 4.0 - 1.0).abs() < 1e-4); // … and variance 1
/// assert_eq!(&y[4..], &[0.0; 4]); // a constant row becomes zeros
/// ```
pub struct LayerNorm<T: Element> {
    /// Scale, `normalized_shape` (ones at first), when elementwise-affine.
    pub weight: Option<Parameter<T>>,
    /// Shift, `normalized_shape` (zeros at first), when elementwise-affine.
    pub bias: Option<Parameter<T>>,
    normalized_shape: Vec<usize>,
    eps: f64,
    training: Cell<bool>,
}

impl<T: Element> LayerNorm<T> {
    /// Normalization over the trailing `normalized_shape` dimensions, with PyTorch's
    /// initialization (weight ones, bias zeros) when `elementwise_affine`. PyTorch's default
    /// `eps` is `1e-5`.
    pub fn new(normalized_shape: &[usize], eps: f64, elementwise_affine: bool) -> Self {
        let affine = |value: Tensor<T>| elementwise_affine.then(|| Parameter::new(value));
        Self {
            weight: affine(Tensor::ones(normalized_shape)),
            bias: affine(Tensor::zeros(normalized_shape)),
            normalized_shape: normalized_shape.to_vec(),
            eps,
            training: Cell::new(true),
        }
    }

    /// The trailing shape normalized over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// The constant added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Normalizes `x`, whose trailing dimensions must equal `normalized_shape`.
    pub fn forward(&self, x: &Var<T>) -> Result<Var<T>, RnnError> {
        let k = self.normalized_shape.len();
        if k == 0 || x.rank() < k || x.shape()[x.rank() - k..] != self.normalized_shape[..] {
            return Err(RnnError::Shape(format!(
                "LayerNorm over {:?} expects input [..., {}], got {:?}",
                self.normalized_shape,
                self.normalized_shape
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                x.shape()
            )));
        }
        let dims: Vec<isize> = (1..=k as isize).map(|d| -d).collect();
        let centered = x - &x.mean(&dims, true);
        let variance = centered.square().mean(&dims, true);
        let normalized = &centered / &variance.add_scalar(T::from_f64_lossy(self.eps)).sqrt();
        Ok(match (&self.weight, &self.bias) {
            (Some(weight), Some(bias)) => &(&normalized * &weight.var()) + &bias.var(),
            _ => normalized,
        })
    }
}

impl<T: Element> Module<T> for LayerNorm<T> {
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        let mut out = Vec::new();
        if let (Some(weight), Some(bias)) = (&self.weight, &self.bias) {
            out.push(("weight".to_string(), weight.clone()));
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
    use autograd::{GradcheckOptions, gradcheck};
    use tensor::seeded_rng;

    #[test]
    fn gradients_match_finite_differences() {
        let norm = LayerNorm::<f64>::new(&[2, 3], 1e-5, true);
        let mut rng = seeded_rng(4);
        for p in Module::<f64>::parameters(&norm) {
            p.set_value(Tensor::randn(&[2, 3], &mut rng)).unwrap();
        }
        let x = Tensor::<f64>::randn(&[4, 2, 3], &mut rng);
        let report = gradcheck(
            |inputs: &[Var<f64>]| norm.forward(&inputs[0]).unwrap(),
            std::slice::from_ref(&x),
            &GradcheckOptions::default(),
        );
        assert!(report.is_ok(), "{:?}", report.err());
        // ∂Σy/∂bias is the number of normalized groups; ∂Σy/∂weight sums the normalized x.
        norm.forward(&Var::constant(x))
            .unwrap()
            .sum(&[], false)
            .backward()
            .unwrap();
        let bias_grad = norm.bias.as_ref().unwrap().grad().unwrap().to_vec();
        assert_eq!(bias_grad, vec![4.0; 6]);
        let weight_grad = norm.weight.as_ref().unwrap().grad().unwrap();
        assert!(
            weight_grad.sum(&[], false).item().abs() < 1e-9,
            "rows are centered"
        );
    }

    #[test]
    fn wrong_trailing_shape_is_an_error() {
        let norm = LayerNorm::<f32>::new(&[5], 1e-5, false);
        let err = norm
            .forward(&Var::constant(Tensor::zeros(&[3, 4])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[..., 5]") && err.contains("[3, 4]"), "{err}");
        assert!(Module::<f32>::named_parameters(&norm).is_empty());
    }
}
