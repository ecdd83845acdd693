//! Gradient clipping: by global norm (Pascanu, Mikolov & Bengio 2013) and by value.

use autograd::Parameter;
use tensor::Element;

/// The global L2 norm of all gradients, `√(Σ_p ‖∇p‖²)` (parameters without a gradient count
/// as zero), accumulated in `f64`.
pub fn grad_norm<T: Element>(params: &[Parameter<T>]) -> f64 {
    params
        .iter()
        .filter_map(Parameter::grad)
        .map(|g| {
            g.to_vec()
                .iter()
                .map(|x| {
                    let x = x.to_f64_lossy();
                    x * x
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt()
}

/// Rescales all gradients together when their global norm exceeds `max_norm`, and returns the
/// norm *before* clipping so it can be logged.
///
/// This is Pascanu, Mikolov & Bengio's (2013) remedy for exploding gradients in recurrent
/// networks — if ‖g‖ > threshold then g ← g · threshold/‖g‖ — in PyTorch's exact form
/// (`torch.nn.utils.clip_grad_norm_`): every gradient is multiplied by
/// `min(1, max_norm / (‖g‖ + 1e-6))`. The `1e-6` guards the division, and it means a norm
/// within 1e-6 below `max_norm` is scaled by a factor a hair under 1, exactly as PyTorch does.
///
/// A non-finite norm is returned as is and the gradients stay non-finite (PyTorch's default): check the returned value and skip the optimizer step when it is not finite.
///
/// Panics when `max_norm` is negative or NaN.
///
/// ```
/// use tapeloop_rnn::train::clip_grad_norm;
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let a = Parameter::new(Tensor::<f64>::zeros(&[2]));
/// a.set_grad(Some(Tensor::from_vec(vec![3.0, 4.0], &[2]))); // ‖g‖ = 5
/// let norm = clip_grad_norm(&[a.clone()], 1.0);
/// assert_eq!(norm, 5.0);
/// let clipped = a.grad().unwrap().to_vec();
/// assert!((clipped[0] - 0.6).abs() < 1e-6 && (clipped[1] - 0.8).abs() < 1e-6);
/// ```
#[track_caller]
pub fn clip_grad_norm<T: Element>(params: &[Parameter<T>], max_norm: f64) -> f64 {
    assert!(
        max_norm >= 0.0,
        "clip_grad_norm: max_norm must be ≥ 0, got {max_norm}"
    );
    let norm = grad_norm(params);
    let coefficient = (max_norm / (norm + 1e-6)).min(1.0);
    // PyTorch multiplies unconditionally (by 1 when under the limit); skipping the no-op keeps
    // gradient storage shared instead of copied.
    if coefficient < 1.0 {
        let factor = T::from_f64_lossy(coefficient);
        for p in params {
            if let Some(g) = p.grad() {
                p.set_grad(Some(g.mul_scalar(factor)));
            }
        }
    }
    norm
}

/// Clamps every gradient element into `[−clip, clip]` (PyTorch's `clip_grad_value_`).
///
/// Panics when `clip` is negative or NaN.
///
/// ```
/// use tapeloop_rnn::train::clip_grad_value;
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let a = Parameter::new(Tensor::<f32>::zeros(&[3]));
/// a.set_grad(Some(Tensor::from_vec(vec![-5.0, 0.25, 2.0], &[3])));
/// clip_grad_value(&[a.clone()], 1.0);
/// assert_eq!(a.grad().unwrap().to_vec(), vec![-1.0, 0.25, 1.0]);
/// ```
#[track_caller]
pub fn clip_grad_value<T: Element>(params: &[Parameter<T>], clip: f64) {
    assert!(clip >= 0.0, "clip_grad_value: clip must be ≥ 0, got {clip}");
    let limit = T::from_f64_lossy(clip);
    for p in params {
        if let Some(g) = p.grad() {
            p.set_grad(Some(g.clamp(-limit, limit)));
        }
    }
}
