//! Losses, composed from autograd ops (no backward pass of their own): mean squared error,
//! cross-entropy from logits, negative log-likelihood, binary cross-entropy with logits.
//!
//! Every loss returns a single-element variable ready for [`Var::backward`], and an error that
//! names the shapes when its inputs do not fit.

use autograd::Var;
use tensor::{Element, Indices, Tensor};

use crate::error::RnnError;

/// How per-element losses are combined into one number (PyTorch's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over the positions that count (PyTorch's default).
    #[default]
    Mean,
    /// The sum over the positions that count.
    Sum,
}

/// Options of [`cross_entropy`] and [`nll`]: which positions count and how they are combined.
///
/// ```
/// use tapeloop_rnn::nn::{CrossEntropyOptions, Reduction};
/// use tapeloop_rnn::Tensor;
///
/// let mask = Tensor::<f32>::from_vec(vec![1.0, 1.0, 0.0], &[3]);
/// let options = CrossEntropyOptions::default().mask(&mask).reduction(Reduction::Sum);
/// assert_eq!(options.ignore_index, None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropyOptions<'a, T: Element> {
    /// Positions whose target is this class are left out (PyTorch's `ignore_index`, e.g. the
    /// padding token). They are not range-checked.
    pub ignore_index: Option<usize>,
    /// One value per position, `N` elements: 1 counts the position, 0 leaves it out (padding
    /// of a variable-length batch). Other values weight the position. Left-out positions are
    /// not range-checked, and what their logits hold never reaches the loss or any gradient.
    pub mask: Option<&'a Tensor<T>>,
    /// Mean over the counted positions (the sum of their mask values), or sum.
    pub reduction: Reduction,
}

impl<'a, T: Element> CrossEntropyOptions<'a, T> {
    /// Leaves out positions whose target is `index`.
    pub fn ignore_index(mut self, index: usize) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// Weights positions by `mask` (1 counts, 0 leaves out).
    pub fn mask(mut self, mask: &'a Tensor<T>) -> Self {
        self.mask = Some(mask);
        self
    }

    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Cross-entropy between `logits` `[N, C]` (unnormalized scores) and class indices `targets`
/// (`N` of them): `−log softmax(logits)[i, targets[i]]`, reduced over the counted positions.
///
/// The log-softmax is the stable one (`x − max − log Σ exp(x − max)`), so large logits do not
/// overflow. As in PyTorch, the mean divides by the number of counted positions (the sum of the
/// mask over positions not ignored). When no position counts, the result is 0 with zero
/// gradients — PyTorch gives NaN there, which would poison every gradient of a fully padded
/// chunk.
///
/// Sequence models flatten `[T, B, C]` logits to `[T·B, C]` and `[T, B]` targets to `T·B`.
///
/// ```
/// use tapeloop_rnn::nn::{CrossEntropyOptions, cross_entropy};
/// use tapeloop_rnn::{Tensor, Var};
///
/// let logits = Var::leaf(Tensor::<f64>::from_vec(vec![2.0, 0.0, 0.0, 0.0, 5.0, 0.0], &[2, 3]));
/// // Row 1's target is the padding class 2: only row 0 counts.
/// let loss = cross_entropy(&logits, &[0, 2], CrossEntropyOptions::default().ignore_index(2)).unwrap();
/// let expected = -(2.0f64.exp() / (2.0f64.exp() + 2.0)).ln();
/// assert!((loss.item() - expected).abs() < 1e-12);
/// loss.backward().unwrap();
/// assert_eq!(&logits.grad().unwrap().to_vec()[3..], &[0.0, 0.0, 0.0]); // nothing reaches row 1
/// ```
pub fn cross_entropy<T: Element>(
    logits: &Var<T>,
    targets: &[usize],
    options: CrossEntropyOptions<'_, T>,
) -> Result<Var<T>, RnnError> {
    check_class_scores("cross_entropy", "logits", logits)?;
    nll(&logits.log_softmax(1), targets, options)
}

/// Negative log-likelihood of class indices under log-probabilities `log_probs` `[N, C]`
/// (PyTorch's `nll_loss`): `−log_probs[i, targets[i]]`, reduced over the counted positions,
/// with the same options as [`cross_entropy`].
pub fn nll<T: Element>(
    log_probs: &Var<T>,
    targets: &[usize],
    options: CrossEntropyOptions<'_, T>,
) -> Result<Var<T>, RnnError> {
    check_class_scores("nll", "log_probs", log_probs)?;
    let (rows, classes) = (log_probs.shape()[0], log_probs.shape()[1]);
    if targets.len() != rows {
        return Err(RnnError::Shape(format!(
            "nll: {} targets for {rows} rows of scores {:?}",
            targets.len(),
            log_probs.shape()
        )));
    }
    let weights: Vec<T> = match options.mask {
        Some(mask) if mask.len() != rows => {
            return Err(RnnError::Shape(format!(
                "nll: mask of shape {:?} has {} elements, expected one per row ({rows})",
                mask.shape(),
                mask.len()
            )));
        }
        Some(mask) => mask.to_vec(),
        None => vec![T::one(); rows],
    };
    let weights: Vec<T> = weights
        .into_iter()
        .zip(targets)
        .map(|(w, &t)| {
            if Some(t) == options.ignore_index {
                T::zero()
            } else {
                w
            }
        })
        .collect();
    let mut gather_index = Vec::with_capacity(rows);
    for (position, (&target, &weight)) in targets.iter().zip(&weights).enumerate() {
        if weight == T::zero() {
            // A left-out position may hold any target (a padding token past the vocabulary);
            // gather something valid and let the mask zero it.
            gather_index.push(0);
        } else if target >= classes {
            return Err(RnnError::Shape(format!(
                "nll: target {target} at position {position} is out of range for {classes} classes"
            )));
        } else {
            gather_index.push(target);
        }
    }
    let picked = log_probs
        .gather(1, &Indices::new(gather_index, &[rows, 1]))
        .reshape(&[rows]);
    let counted: T = weights.iter().copied().sum();
    let weight_tensor = Tensor::from_vec(weights, &[rows]);
    // `where` rather than a product so that even a non-finite score at a left-out position
    // leaves the loss untouched (0 · inf would be NaN).
    let per_position = Var::where_cond(
        &weight_tensor,
        &(&picked * &Var::constant(weight_tensor.clone())),
        &Var::constant(Tensor::zeros(&[rows])),
    );
    let total = per_position.sum(&[], false).neg();
    Ok(match options.reduction {
        Reduction::Sum => total,
        Reduction::Mean if counted == T::zero() => total,
        Reduction::Mean => total.mul_scalar(T::one() / counted),
    })
}

fn check_class_scores<T: Element>(op: &str, what: &str, scores: &Var<T>) -> Result<(), RnnError> {
    if scores.rank() != 2 || scores.shape()[1] == 0 {
        return Err(RnnError::Shape(format!(
            "{op}: {what} must be [N, C] with C ≥ 1 (flatten [T, B, C] to [T·B, C]), got {:?}",
            scores.shape()
        )));
    }
    Ok(())
}

fn check_same_shape<T: Element>(op: &str, a: &Var<T>, b: &Var<T>) -> Result<(), RnnError> {
    if a.shape() != b.shape() {
        return Err(RnnError::Shape(format!(
            "{op}: prediction has shape {:?} but target has shape {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

fn reduce<T: Element>(per_element: &Var<T>, reduction: Reduction) -> Var<T> {
    match reduction {
        Reduction::Mean => per_element.mean(&[], false),
        Reduction::Sum => per_element.sum(&[], false),
    }
}

/// Mean squared error `(prediction − target)²`, reduced over every element. The shapes must be
/// equal (PyTorch only warns when they broadcast, which is almost always a bug).
///
/// ```
/// use tapeloop_rnn::nn::{Reduction, mse};
/// use tapeloop_rnn::{Tensor, Var};
///
/// let prediction = Var::constant(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]));
/// let target = Var::constant(Tensor::from_vec(vec![0.0, 4.0], &[2]));
/// assert_eq!(mse(&prediction, &target, Reduction::Mean).unwrap().item(), 2.5);
/// assert_eq!(mse(&prediction, &target, Reduction::Sum).unwrap().item(), 5.0);
/// ```
pub fn mse<T: Element>(
    prediction: &Var<T>,
    target: &Var<T>,
    reduction: Reduction,
) -> Result<Var<T>, RnnError> {
    check_same_shape("mse", prediction, target)?;
    Ok(reduce(&(prediction - target).square(), reduction))
}

/// Binary cross-entropy between `logits` and targets in [0, 1] of the same shape (PyTorch's
/// `binary_cross_entropy_with_logits`): `−y log σ(x) − (1 − y) log(1 − σ(x))`.
///
/// Computed as `log(1 + eˣ) − x·y` with `log(1 + eˣ) = logsumexp(0, x)`, which equals the
/// textbook stable form `max(x, 0) − x·y + log(1 + e^{−|x|})` and never overflows; unlike that
/// form, its gradient `σ(x) − y` is exact at `x = 0` too (`max` and `|x|` have kinks there).
///
/// ```
/// use tapeloop_rnn::nn::{Reduction, bce_with_logits};
/// use tapeloop_rnn::{Tensor, Var};
///
/// let logits = Var::leaf(Tensor::<f64>::from_vec(vec![0.0, 800.0, -800.0], &[3]));
/// let targets = Var::constant(Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3]));
/// let loss = bce_with_logits(&logits, &targets, Reduction::Sum).unwrap();
/// assert!((loss.item() - (2.0f64.ln() + 800.0)).abs() < 1e-9); // no overflow at ±800
/// loss.backward().unwrap();
/// assert_eq!(logits.grad().unwrap().to_vec(), vec![-0.5, 0.0, -1.0]); // σ(x) − y
/// ```
pub fn bce_with_logits<T: Element>(
    logits: &Var<T>,
    targets: &Var<T>,
    reduction: Reduction,
) -> Result<Var<T>, RnnError> {
    check_same_shape("bce_with_logits", logits, targets)?;
    let zeros = Var::constant(Tensor::zeros(logits.shape()));
    let softplus = Var::stack(&[&zeros, logits], -1).logsumexp(&[-1], false);
    Ok(reduce(&(&softplus - &(logits * targets)), reduction))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::seeded_rng;

    fn logits(rows: usize, classes: usize, seed: u64) -> Tensor<f64> {
        Tensor::randn(&[rows, classes], &mut seeded_rng(seed))
    }

    #[test]
    fn cross_entropy_matches_the_definition() {
        let x = logits(4, 5, 0);
        let targets = [1, 4, 0, 1];
        let loss = cross_entropy(
            &Var::constant(x.clone()),
            &targets,
            CrossEntropyOptions::default(),
        )
        .unwrap()
        .item();
        let mut expected = 0.0;
        for (i, &t) in targets.iter().enumerate() {
            let row: Vec<f64> = (0..5).map(|j| x.get(&[i, j])).collect();
            let log_z = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            expected += log_z - row[t];
        }
        assert!(
            (loss - expected / 4.0).abs() < 1e-12,
            "{loss} vs {}",
            expected / 4.0
        );
    }

    #[test]
    fn gradient_is_softmax_minus_one_hot_over_count() {
        let x = Var::leaf(logits(3, 4, 1));
        let loss = cross_entropy(&x, &[2, 0, 3], CrossEntropyOptions::default()).unwrap();
        loss.backward().unwrap();
        let softmax = x.value().softmax(1);
        let one_hot = Tensor::one_hot(&Indices::from_slice(&[2, 0, 3]), 4);
        let expected = softmax.sub(&one_hot).mul_scalar(1.0 / 3.0);
        let err = x
            .grad()
            .unwrap()
            .sub(&expected)
            .abs()
            .max(&[], false)
            .item();
        assert!(err < 1e-15, "{err}");
    }

    #[test]
    fn stable_for_huge_logits() {
        let x = Var::constant(Tensor::<f32>::from_vec(vec![1000.0, 0.0, -1000.0], &[1, 3]));
        let loss = cross_entropy(&x, &[1], CrossEntropyOptions::default()).unwrap();
        assert_eq!(loss.item(), 1000.0);
    }

    #[test]
    fn everything_ignored_gives_zero_not_nan() {
        let x = Var::leaf(logits(2, 3, 2));
        let loss =
            cross_entropy(&x, &[1, 1], CrossEntropyOptions::default().ignore_index(1)).unwrap();
        assert_eq!(loss.item(), 0.0);
        loss.backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0; 6]);
    }

    #[test]
    fn errors_name_what_does_not_fit() {
        let x = Var::constant(logits(2, 3, 3));
        let too_few = cross_entropy(&x, &[0], CrossEntropyOptions::default());
        assert!(
            too_few
                .unwrap_err()
                .to_string()
                .contains("1 targets for 2 rows")
        );
        let out_of_range = cross_entropy(&x, &[0, 3], CrossEntropyOptions::default());
        let message = out_of_range.unwrap_err().to_string();
        assert!(message.contains("target 3 at position 1"), "{message}");
        let cube = Var::constant(Tensor::<f64>::zeros(&[2, 2, 3]));
        let message = cross_entropy(&cube, &[0; 4], CrossEntropyOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[T·B, C]") && message.contains("[2, 2, 3]"),
            "{message}"
        );
        let mask = Tensor::<f64>::ones(&[3]);
        let message = nll(&x, &[0, 1], CrossEntropyOptions::default().mask(&mask))
            .unwrap_err()
            .to_string();
        assert!(message.contains("mask of shape [3]"), "{message}");
        let a = Var::constant(Tensor::<f64>::zeros(&[2]));
        let b = Var::constant(Tensor::<f64>::zeros(&[2, 1]));
        let message = mse(&a, &b, Reduction::Mean).unwrap_err().to_string();
        assert!(
            message.contains("[2]") && message.contains("[2, 1]"),
            "{message}"
        );
    }

    #[test]
    fn bce_matches_the_textbook_form() {
        let x = logits(3, 3, 4);
        let y = Tensor::<f64>::rand_uniform(&[3, 3], 0.0, 1.0, &mut seeded_rng(5));
        let loss = bce_with_logits(
            &Var::constant(x.clone()),
            &Var::constant(y.clone()),
            Reduction::Mean,
        )
        .unwrap()
        .item();
        let expected: f64 = x
            .to_vec()
            .iter()
            .zip(y.to_vec())
            .map(|(&x, y)| {
                let p = 1.0 / (1.0 + (-x).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 9.0;
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    }
}
