//! Gradient checks for whole layers and cells: the tape's BPTT against central finite
//! differences, for the inputs, the initial states and every parameter. This is what a user
//! runs after writing a new cell (`tapeloop gradcheck`).

use autograd::{
    GradcheckError, GradcheckOptions, GradcheckReport, Parameter, Var, gradcheck, no_grad,
};
use tensor::{Tensor, TensorRng};

use crate::cell::Cell;
use crate::layer::Recurrent;
use crate::module::Module;

/// Checks the gradients of `loss` with respect to every parameter against central finite
/// differences (each element perturbed by ±ε in turn). Parameter values are restored
/// afterwards. The mismatch report names the parameter (by its position in `params`; see
/// [`check_layer`] for names) and the element.
pub fn gradcheck_parameters(
    loss: impl Fn() -> Var<f64>,
    params: &[Parameter<f64>],
    options: &GradcheckOptions,
) -> Result<GradcheckReport, GradcheckError> {
    for p in params {
        p.zero_grad();
    }
    loss().backward().map_err(GradcheckError::Autograd)?;
    let analytical: Vec<Tensor<f64>> = params
        .iter()
        .map(|p| p.grad().unwrap_or_else(|| Tensor::zeros(&p.shape())))
        .collect();
    for p in params {
        p.zero_grad();
    }
    let evaluate = || no_grad(|| loss().item());
    let mut report = GradcheckReport {
        max_abs_error: 0.0,
        compared: 0,
    };
    for (input, (param, exact)) in params.iter().zip(&analytical).enumerate() {
        let original = param.value();
        let shape = param.shape();
        for flat in 0..original.len() {
            let index = unravel(flat, &shape);
            let at = |delta: f64| {
                let mut perturbed = original.clone();
                perturbed.set(&index, original.get(&index) + delta);
                param.set_value(perturbed).expect("same shape");
                evaluate()
            };
            let numerical = (at(options.eps) - at(-options.eps)) / (2.0 * options.eps);
            param.set_value(original.clone()).expect("same shape");
            let analytical = exact.get(&index);
            let diff = (analytical - numerical).abs();
            report.compared += 1;
            report.max_abs_error = report.max_abs_error.max(diff);
            // Written so that a NaN on either side fails.
            let within = diff <= options.atol + options.rtol * numerical.abs();
            if !within {
                return Err(GradcheckError::Mismatch(Box::new(
                    autograd::GradcheckMismatch {
                        output: 0,
                        input,
                        output_index: Vec::new(),
                        input_index: index,
                        analytical,
                        numerical,
                    },
                )));
            }
        }
    }
    Ok(report)
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &size) in index.iter_mut().zip(shape).rev() {
        *slot = flat % size;
        flat /= size;
    }
    index
}

/// The result of [`check_layer`].
#[derive(Clone, Debug)]
pub struct LayerCheckReport {
    /// Largest |analytical − numerical| over the input and initial states.
    pub inputs: GradcheckReport,
    /// Largest |analytical − numerical| over every parameter.
    pub parameters: GradcheckReport,
}

/// Gradient-checks a whole layer in `f64`: a random input of `steps × batch`, random initial
/// states, optional lengths, and a loss that weights every output and final state by fixed
/// random tensors (so every path through time contributes). Errors name the parameter or input
/// and the element that disagree.
///
/// ```
/// use tapeloop_rnn::{Lstm, RecurrentConfig, check::check_layer, seeded_rng};
/// use tapeloop_rnn::autograd::GradcheckOptions;
///
/// let mut rng = seeded_rng(0);
/// let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(2, 3).bidirectional(true), 0, &mut rng);
/// let report = check_layer(&lstm, 4, 2, Some(&[4, 2]), &GradcheckOptions::default(), &mut rng).unwrap();
/// assert!(report.parameters.max_abs_error < 1e-6);
/// ```
pub fn check_layer<C: Cell<f64>>(
    layer: &Recurrent<f64, C>,
    steps: usize,
    batch: usize,
    lengths: Option<&[usize]>,
    options: &GradcheckOptions,
    rng: &mut TensorRng,
) -> Result<LayerCheckReport, String> {
    let config = layer.config().clone();
    let count = layer.cells().len();
    let sizes = layer.cells()[0].state_sizes();
    let input_shape = if config.batch_first {
        [batch, steps, config.input_size]
    } else {
        [steps, batch, config.input_size]
    };
    let mut inputs = vec![Tensor::<f64>::randn(&input_shape, rng)];
    for &size in &sizes {
        inputs.push(Tensor::randn(&[count, batch, size], rng));
    }
    // Fixed weights for every result: output and each final state.
    let probe = layer
        .forward(&Var::constant(inputs[0].clone()), None, lengths)
        .map_err(|e| e.to_string())?;
    let mut weights = vec![Tensor::<f64>::randn(probe.output.shape(), rng)];
    for state in &probe.final_states {
        weights.push(Tensor::randn(state.shape(), rng));
    }
    let loss_of = |vars: &[Var<f64>]| -> Var<f64> {
        let out = layer
            .forward(&vars[0], Some(&vars[1..]), lengths)
            .expect("shapes were checked by the probe run");
        let mut loss = (&out.output * &Var::constant(weights[0].clone())).sum(&[], false);
        for (state, w) in out.final_states.iter().zip(&weights[1..]) {
            loss = &loss + &(state * &Var::constant(w.clone())).sum(&[], false);
        }
        loss
    };
    let inputs_report = gradcheck(loss_of, &inputs, options).map_err(|e| {
        let names = ["input", "h0", "c0"];
        format!(
            "{e} (input 0 is the sequence, then initial states: {:?})",
            &names[..inputs.len()]
        )
    })?;
    let named = layer.named_parameters();
    let params: Vec<Parameter<f64>> = named.iter().map(|(_, p)| p.clone()).collect();
    let constants: Vec<Var<f64>> = inputs.iter().cloned().map(Var::constant).collect();
    let parameters_report = gradcheck_parameters(|| loss_of(&constants), &params, options)
        .map_err(|e| match &e {
            GradcheckError::Mismatch(m) => format!(
                "parameter `{}` element {:?}: analytical {:.10e}, numerical {:.10e}",
                named[m.input].0, m.input_index, m.analytical, m.numerical
            ),
            other => other.to_string(),
        })?;
    Ok(LayerCheckReport {
        inputs: inputs_report,
        parameters: parameters_report,
    })
}
