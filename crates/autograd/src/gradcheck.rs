//! Gradient checking as a public API: the tape's gradients against central finite differences.
//!
//! [`gradcheck`] compares the analytical Jacobian (one backward pass per output element)
//! with the numerical one, `(f(x + ε) − f(x − ε)) / 2ε` per input element, in `f64`, with
//! PyTorch's defaults (ε = 1e-6, atol = 1e-5, rtol = 1e-3). [`gradgradcheck`] does the same for
//! the gradient itself, which checks every second derivative the ops provide.

use std::fmt;

use rand::RngExt;
use tensor::{Tensor, seeded_rng};

use crate::engine::{BackwardOptions, grad};
use crate::error::AutogradError;
use crate::mode::{GradModeGuard, no_grad};
use crate::var::Var;

/// Tolerances and mode of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (relative to the numerical value).
    pub rtol: f64,
    /// Compare `vᵀJu` for random `u`, `v` per input instead of the full Jacobian: one backward
    /// pass and two forward passes per input, for large inputs.
    pub fast_mode: bool,
    /// Seed of the random directions of fast mode and of gradgradcheck's output gradients.
    pub seed: u64,
}

impl GradcheckOptions {
    /// How far a value may lie from `reference` and still agree with it.
    fn tolerance(&self, reference: f64) -> f64 {
        self.atol + self.rtol * reference.abs()
    }
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        Self {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            fast_mode: false,
            seed: 0,
        }
    }
}

/// What a passing check measured.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// The largest |analytical − numerical| over every compared entry.
    pub max_abs_error: f64,
    /// How many Jacobian entries (or projections, in fast mode) were compared.
    pub compared: usize,
}

/// The entry where analytical and numerical gradients disagree the most.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckMismatch {
    /// Which output (position in the list `f` returns).
    pub output: usize,
    /// Which input.
    pub input: usize,
    /// Multi-index of the output element (empty in fast mode).
    pub output_index: Vec<usize>,
    /// Multi-index of the input element (empty in fast mode).
    pub input_index: Vec<usize>,
    /// The tape's value.
    pub analytical: f64,
    /// The finite-difference value.
    pub numerical: f64,
}

/// Why a gradient check did not pass.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub enum GradcheckError {
    /// An input's elements overlap in memory (a stride-0 broadcast view): perturbing one
    /// element would move several, so finite differences would be meaningless.
    OverlappingInput {
        /// Which input.
        input: usize,
        /// Its shape.
        shape: Vec<usize>,
        /// Its strides.
        strides: Vec<usize>,
    },
    /// The gradients differ beyond the tolerance.
    Mismatch(Box<GradcheckMismatch>),
    /// Computing gradients failed.
    Autograd(AutogradError),
    /// (gradgradcheck) The first derivative recorded under `create_graph` differs from the
    /// one a plain backward pass computes.
    RecordedGradientMismatch {
        /// Which input the gradient belongs to.
        input: usize,
        /// The element.
        index: Vec<usize>,
        /// Its value recorded under `create_graph`.
        recorded: f64,
        /// Its value from a plain backward pass.
        plain: f64,
    },
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::OverlappingInput {
                input,
                shape,
                strides,
            } => write!(
                f,
                "gradcheck: input {input} (shape {shape:?}, strides {strides:?}) has elements that share memory; finite differences would perturb several at once. Pass a contiguous copy."
            ),
            GradcheckError::Mismatch(m) => write!(
                f,
                "gradcheck: Jacobian mismatch for output {} element {:?} with respect to input {} element {:?}: analytical {:.10e}, numerical {:.10e} (difference {:.3e})",
                m.output,
                m.output_index,
                m.input,
                m.input_index,
                m.analytical,
                m.numerical,
                (m.analytical - m.numerical).abs()
            ),
            GradcheckError::Autograd(e) => write!(f, "gradcheck: {e}"),
            GradcheckError::RecordedGradientMismatch {
                input,
                index,
                recorded,
                plain,
            } => write!(
                f,
                "gradgradcheck: the gradient for input {input} element {index:?} is {recorded:.10e} recorded under create_graph and {plain:.10e} from a plain backward pass"
            ),
        }
    }
}

impl std::error::Error for GradcheckError {}

impl From<AutogradError> for GradcheckError {
    fn from(e: AutogradError) -> Self {
        GradcheckError::Autograd(e)
    }
}

/// What a checked function may return: one variable or several.
pub trait CheckOutputs {
    /// The outputs as a list.
    fn into_outputs(self) -> Vec<Var<f64>>;
}

impl CheckOutputs for Var<f64> {
    fn into_outputs(self) -> Vec<Var<f64>> {
        vec![self]
    }
}

impl CheckOutputs for Vec<Var<f64>> {
    fn into_outputs(self) -> Vec<Var<f64>> {
        self
    }
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &size) in index.iter_mut().zip(shape).rev() {
        *slot = flat % size;
        flat /= size;
    }
    index
}

fn evaluate<F, O>(f: &F, inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    no_grad(|| {
        let vars: Vec<Var<f64>> = inputs.iter().cloned().map(Var::constant).collect();
        f(&vars)
            .into_outputs()
            .into_iter()
            .map(|v| v.value)
            .collect()
    })
}

/// Checks `f`'s gradients with respect to every input against central finite differences.
///
/// Inputs may be strided views (their layout is kept while perturbing) but must not overlap.
///
/// ```
/// use tapeloop_autograd::{GradcheckOptions, Var, gradcheck, Tensor, seeded_rng};
///
/// let mut rng = seeded_rng(0);
/// let x = Tensor::<f64>::randn(&[3, 4], &mut rng);
/// let w = Tensor::<f64>::randn(&[5, 4], &mut rng);
/// let report = gradcheck(
///     |v: &[Var<f64>]| v[0].matmul(&v[1].t()).tanh(),
///     &[x, w],
///     &GradcheckOptions::default(),
/// )
/// .unwrap();
/// assert!(report.max_abs_error < 1e-7);
/// ```
pub fn gradcheck<F, O>(
    f: F,
    inputs: &[Tensor<f64>],
    options: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    for (i, input) in inputs.iter().enumerate() {
        if input.layout().has_overlap() {
            return Err(GradcheckError::OverlappingInput {
                input: i,
                shape: input.shape().to_vec(),
                strides: input.strides().to_vec(),
            });
        }
    }
    if options.fast_mode {
        fast_check(&f, inputs, options)
    } else {
        full_check(&f, inputs, options)
    }
}

/// Tracks the worst entry and whether any failed the tolerance.
struct Worst {
    report: GradcheckReport,
    failure: Option<(f64, GradcheckMismatch)>,
}

impl Worst {
    fn new() -> Self {
        Self {
            report: GradcheckReport {
                max_abs_error: 0.0,
                compared: 0,
            },
            failure: None,
        }
    }

    fn compare(
        &mut self,
        analytical: f64,
        numerical: f64,
        options: &GradcheckOptions,
        at: impl FnOnce() -> GradcheckMismatch,
    ) {
        let diff = (analytical - numerical).abs();
        self.report.compared += 1;
        if diff > self.report.max_abs_error || diff.is_nan() {
            self.report.max_abs_error = diff;
        }
        let excess = diff - options.tolerance(numerical);
        if (excess > 0.0 || diff.is_nan()) && self.failure.as_ref().is_none_or(|(e, _)| excess > *e)
        {
            self.failure = Some((excess, at()));
        }
    }

    fn finish(self) -> Result<GradcheckReport, GradcheckError> {
        match self.failure {
            Some((_, mismatch)) => Err(GradcheckError::Mismatch(Box::new(mismatch))),
            None => Ok(self.report),
        }
    }
}

fn full_check<F, O>(
    f: &F,
    inputs: &[Tensor<f64>],
    options: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    let leaves: Vec<Var<f64>> = inputs.iter().cloned().map(Var::leaf).collect();
    let outputs = f(&leaves).into_outputs();
    let output_shapes: Vec<Vec<usize>> = outputs.iter().map(|o| o.shape().to_vec()).collect();

    // analytical[o][j][i] = ∂ output o element j / ∂ input i (a tensor of the input's shape).
    let mut analytical: Vec<Vec<Vec<Tensor<f64>>>> = Vec::new();
    let differentiable = outputs.iter().any(Var::requires_grad);
    for (o, output) in outputs.iter().enumerate() {
        let mut rows = Vec::with_capacity(output.value.len());
        for j in 0..output.value.len() {
            let row: Vec<Tensor<f64>> = if !differentiable || !output.requires_grad() {
                inputs.iter().map(Tensor::zeros_like).collect()
            } else {
                let seeds: Vec<Var<f64>> = outputs
                    .iter()
                    .enumerate()
                    .map(|(k, out)| {
                        let mut seed = vec![0.0; out.value.len()];
                        if k == o {
                            seed[j] = 1.0;
                        }
                        Var::constant(Tensor::from_vec(seed, out.shape()))
                    })
                    .collect();
                let grads = grad(
                    &outputs,
                    &leaves,
                    Some(&seeds),
                    BackwardOptions::retain_graph(),
                    true,
                )?;
                grads
                    .into_iter()
                    .zip(inputs)
                    .map(|(g, x)| g.map_or_else(|| Tensor::zeros_like(x), |g| g.value))
                    .collect()
            };
            rows.push(row);
        }
        analytical.push(rows);
    }

    let mut worst = Worst::new();
    for (i, input) in inputs.iter().enumerate() {
        for e in 0..input.len() {
            let index = unravel(e, input.shape());
            let original = input.get(&index);
            let shifted = |delta: f64| {
                let mut perturbed: Vec<Tensor<f64>> = inputs.to_vec();
                perturbed[i].set(&index, original + delta);
                evaluate(f, &perturbed)
            };
            let (plus, minus) = (shifted(options.eps), shifted(-options.eps));
            for o in 0..output_shapes.len() {
                let (p, m) = (plus[o].to_vec(), minus[o].to_vec());
                for j in 0..p.len() {
                    let numerical = (p[j] - m[j]) / (2.0 * options.eps);
                    let exact = analytical[o][j][i].get(&index);
                    worst.compare(exact, numerical, options, || GradcheckMismatch {
                        output: o,
                        input: i,
                        output_index: unravel(j, &output_shapes[o]),
                        input_index: index.clone(),
                        analytical: exact,
                        numerical,
                    });
                }
            }
        }
    }
    worst.finish()
}

fn fast_check<F, O>(
    f: &F,
    inputs: &[Tensor<f64>],
    options: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    let mut rng = seeded_rng(options.seed);
    let leaves: Vec<Var<f64>> = inputs.iter().cloned().map(Var::leaf).collect();
    let outputs = f(&leaves).into_outputs();
    let projections: Vec<Tensor<f64>> = outputs
        .iter()
        .map(|o| Tensor::randn(o.shape(), &mut rng))
        .collect();
    let seeds: Vec<Var<f64>> = projections.iter().cloned().map(Var::constant).collect();
    let grads = if outputs.iter().any(Var::requires_grad) {
        grad(
            &outputs,
            &leaves,
            Some(&seeds),
            BackwardOptions::retain_graph(),
            true,
        )?
    } else {
        vec![None; inputs.len()]
    };
    let mut worst = Worst::new();
    for (i, input) in inputs.iter().enumerate() {
        let direction: Vec<f64> = (0..input.len())
            .map(|_| rng.random::<f64>() - 0.5)
            .collect();
        let analytical = grads[i].as_ref().map_or(0.0, |g| {
            g.value
                .to_vec()
                .iter()
                .zip(&direction)
                .map(|(a, b)| a * b)
                .sum()
        });
        let shifted = |sign: f64| {
            let mut perturbed: Vec<Tensor<f64>> = inputs.to_vec();
            for (e, &d) in direction.iter().enumerate() {
                let index = unravel(e, input.shape());
                perturbed[i].set(&index, input.get(&index) + sign * options.eps * d);
            }
            evaluate(f, &perturbed)
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        let numerical: f64 = plus
            .iter()
            .zip(&minus)
            .zip(&projections)
            .map(|((p, m), v)| {
                p.to_vec()
                    .iter()
                    .zip(m.to_vec())
                    .zip(v.to_vec())
                    .map(|((a, b), w)| (a - b) / (2.0 * options.eps) * w)
                    .sum::<f64>()
            })
            .sum();
        worst.compare(analytical, numerical, options, || GradcheckMismatch {
            output: 0,
            input: i,
            output_index: Vec::new(),
            input_index: Vec::new(),
            analytical,
            numerical,
        });
    }
    worst.finish()
}

/// Checks second derivatives: the gradient of `f` (weighted by random output gradients, which
/// become extra inputs) is itself gradient-checked, so every op's backward rule is
/// differentiated by the tape and compared against finite differences of the first
/// derivative. First, the first derivative recorded under `create_graph` is compared with the
/// one a plain backward pass computes: differentiating it checks only that it is consistent
/// with its own derivative.
///
/// ```
/// use tapeloop_autograd::{GradcheckOptions, Var, gradgradcheck, Tensor, seeded_rng};
///
/// let x = Tensor::<f64>::randn(&[2, 3], &mut seeded_rng(1));
/// gradgradcheck(|v: &[Var<f64>]| v[0].tanh().sigmoid(), &[x], &GradcheckOptions::default()).unwrap();
/// ```
pub fn gradgradcheck<F, O>(
    f: F,
    inputs: &[Tensor<f64>],
    options: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    let mut rng = seeded_rng(options.seed.wrapping_add(1));
    let output_shapes: Vec<Vec<usize>> = evaluate(&f, inputs)
        .iter()
        .map(|t| t.shape().to_vec())
        .collect();
    let output_grads: Vec<Tensor<f64>> = output_shapes
        .iter()
        .map(|s| Tensor::randn(s, &mut rng))
        .collect();
    let count = inputs.len();
    let first_derivative_with = |vars: &[Var<f64>], backward: BackwardOptions| -> Vec<Var<f64>> {
        let (xs, vs) = vars.split_at(count);
        // The numerical pass evaluates this under `no_grad` with constant inputs; the first
        // derivative still has to be taken there, so record and use fresh leaves.
        let _recording = GradModeGuard::new(true);
        let xs: Vec<Var<f64>> = xs
            .iter()
            .map(|x| {
                if x.requires_grad() {
                    x.clone()
                } else {
                    Var::leaf(x.value.clone())
                }
            })
            .collect();
        let xs = &xs[..];
        let outputs = f(xs).into_outputs();
        let tracked: Vec<Var<f64>> = outputs
            .iter()
            .filter(|o| o.requires_grad())
            .cloned()
            .collect();
        let seeds: Vec<Var<f64>> = outputs
            .iter()
            .zip(vs)
            .filter(|(o, _)| o.requires_grad())
            .map(|(_, v)| v.clone())
            .collect();
        if tracked.is_empty() {
            return xs
                .iter()
                .map(|x| Var::constant(Tensor::zeros(x.shape())))
                .collect();
        }
        let grads = grad(&tracked, xs, Some(&seeds), backward, true)
            .unwrap_or_else(|e| panic!("gradgradcheck: first derivative failed: {e}"));
        grads
            .into_iter()
            .zip(xs)
            .map(|(g, x)| g.unwrap_or_else(|| Var::constant(Tensor::zeros(x.shape()))))
            .collect()
    };
    let mut all_inputs: Vec<Tensor<f64>> = inputs.to_vec();
    all_inputs.extend(output_grads);
    // The check below differentiates the recorded first derivative, and would accept one that
    // is wrong but consistent with its own derivative (a rule recorded under `create_graph`
    // may be written apart from the one-pass rule used otherwise). So its value must first
    // equal the plain backward pass's, which gradcheck holds to finite differences.
    let at_inputs: Vec<Var<f64>> = all_inputs.iter().cloned().map(Var::leaf).collect();
    let recorded = first_derivative_with(&at_inputs, BackwardOptions::create_graph());
    let plain = first_derivative_with(&at_inputs, BackwardOptions::default());
    for (input, (recorded, plain)) in recorded.iter().zip(&plain).enumerate() {
        let pairs = recorded
            .value
            .to_vec()
            .into_iter()
            .zip(plain.value.to_vec());
        for (element, (r, p)) in pairs.enumerate() {
            // False when either is NaN, which is a mismatch too.
            let agree = (r - p).abs() <= options.tolerance(p);
            if !agree {
                return Err(GradcheckError::RecordedGradientMismatch {
                    input,
                    index: unravel(element, recorded.shape()),
                    recorded: r,
                    plain: p,
                });
            }
        }
    }
    gradcheck(
        |vars: &[Var<f64>]| first_derivative_with(vars, BackwardOptions::create_graph()),
        &all_inputs,
        options,
    )
}
