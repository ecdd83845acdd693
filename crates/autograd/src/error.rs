//! Errors of the autograd engine.

use std::fmt;
use std::panic::Location;

use tensor::TensorError;

/// Where an op was recorded and what it was given: attached to anomaly reports.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyReport {
    /// The op that produced a non-finite value, e.g. `"log"`.
    pub op: &'static str,
    /// `"forward"` when the op's result was non-finite, `"backward"` when a gradient it
    /// computed was.
    pub phase: &'static str,
    /// Shapes of the op's inputs.
    pub input_shapes: Vec<Vec<usize>>,
    /// The source location of the call that recorded the op.
    pub location: String,
}

impl fmt::Display for AnomalyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of `{}` produced NaN or infinity (inputs {:?}), recorded at {}",
            self.phase, self.op, self.input_shapes, self.location
        )
    }
}

pub(crate) fn location_string(location: &'static Location<'static>) -> String {
    format!(
        "{}:{}:{}",
        location.file(),
        location.line(),
        location.column()
    )
}

/// What can go wrong when computing gradients.
#[derive(Clone, Debug, PartialEq)]
pub enum AutogradError {
    /// `backward()` was called on a result with more than one element and no seed gradient.
    NonScalarOutput {
        /// Shape of the result.
        shape: Vec<usize>,
    },
    /// A seed gradient's shape differs from its output's.
    SeedShape {
        /// Shape of the output.
        output: Vec<usize>,
        /// Shape of the seed given.
        seed: Vec<usize>,
    },
    /// The output does not require gradients: nothing was recorded.
    NoGraph,
    /// A variable asked for is not part of the graph that produced the outputs.
    NotInGraph {
        /// Position of the variable in the list of inputs asked for.
        input: usize,
    },
    /// The graph was freed by an earlier backward pass (pass `retain_graph` to keep it).
    GraphFreed {
        /// The op whose saved values were already released.
        op: &'static str,
    },
    /// A backward rule returned a gradient whose shape differs from its input's.
    GradientShape {
        /// The op whose backward rule misbehaved.
        op: &'static str,
        /// Shape of the input.
        expected: Vec<usize>,
        /// Shape of the gradient it returned.
        got: Vec<usize>,
    },
    /// Anomaly mode found a NaN or infinity.
    Anomaly(AnomalyReport),
    /// A tensor operation failed.
    Tensor(TensorError),
}

impl fmt::Display for AutogradError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutogradError::NonScalarOutput { shape } => write!(
                f,
                "backward: the output has shape {shape:?}; backward without a seed gradient needs a single element (use backward_with)"
            ),
            AutogradError::SeedShape { output, seed } => write!(
                f,
                "backward: seed gradient of shape {seed:?} does not match output of shape {output:?}"
            ),
            AutogradError::NoGraph => write!(
                f,
                "backward: the output does not require gradients (no input required them, or it was computed under no_grad)"
            ),
            AutogradError::NotInGraph { input } => write!(
                f,
                "grad: input {input} is not part of the graph that produced the outputs (a variable from another graph, or unused; pass allow_unused)"
            ),
            AutogradError::GraphFreed { op } => write!(
                f,
                "backward: the graph was already freed by an earlier backward pass (at op `{op}`); pass retain_graph to backward through it twice, or detach() state carried across iterations"
            ),
            AutogradError::GradientShape { op, expected, got } => write!(
                f,
                "backward of `{op}` returned a gradient of shape {got:?} for an input of shape {expected:?}"
            ),
            AutogradError::Anomaly(report) => write!(f, "anomaly detected: {report}"),
            AutogradError::Tensor(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AutogradError {}

impl From<TensorError> for AutogradError {
    fn from(e: TensorError) -> Self {
        AutogradError::Tensor(e)
    }
}
