//! Parity with PyTorch: run a reference case (a safetensors file written by PyTorch with the
//! layer's configuration, parameters, inputs, results and gradients) and compare every tensor.
//!
//! The file format is that of the project's `tests/fixtures/torch/README.md`: metadata `mode`,
//! `input_size`, `hidden_size`, `num_layers`, `bidirectional`, `batch_first`, `bias`,
//! `nonlinearity`, `proj_size`, `dtype`; tensors under PyTorch's names, `input`, `h0`, `c0`,
//! `output`, `h_n`, `c_n`, loss weights `r_*`, gradients `grad.*`, and optionally int64
//! `lengths` for a variable-length batch.

use std::collections::HashMap;
use std::path::Path;

use autograd::Var;
use tensor::{Element, Tensor, seeded_rng};

use crate::cell::{Cell, Nonlinearity};
use crate::error::RnnError;
use crate::io::{TensorFile, load_from};
use crate::layer::{Recurrent, RecurrentConfig};
use crate::module::Module;

/// One compared tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ParityRow {
    /// The tensor's name in the file (`output`, `grad.weight_hh_l0`, …).
    pub name: String,
    /// Largest |ours − torch|.
    pub max_abs: f64,
    /// Largest |ours − torch| / |torch| over elements where torch ≠ 0.
    pub max_rel: f64,
    /// Every element within `atol + rtol·|torch|`.
    pub passed: bool,
}

/// The outcome of one reference case.
#[derive(Clone, Debug, PartialEq)]
pub struct ParityReport {
    /// The file.
    pub path: String,
    /// A one-line description of the configuration.
    pub description: String,
    /// The tolerances used: (atol, rtol).
    pub tolerance: (f64, f64),
    /// Every compared tensor.
    pub rows: Vec<ParityRow>,
}

impl ParityReport {
    /// True when every tensor matched.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.passed)
    }
}

fn metadata_value<'a>(
    metadata: &'a HashMap<String, String>,
    key: &str,
    path: &str,
) -> Result<&'a str, RnnError> {
    metadata
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| RnnError::File {
            path: path.to_string(),
            message: format!("metadata has no `{key}`"),
        })
}

fn parse<V: std::str::FromStr>(
    metadata: &HashMap<String, String>,
    key: &str,
    path: &str,
) -> Result<V, RnnError> {
    let text = metadata_value(metadata, key, path)?;
    text.parse().map_err(|_| RnnError::File {
        path: path.to_string(),
        message: format!("metadata `{key}` = `{text}` is not a valid value"),
    })
}

/// Runs the reference case in `path` and compares outputs, final states and every gradient.
pub fn check_parity(path: impl AsRef<Path>) -> Result<ParityReport, RnnError> {
    let file = TensorFile::open(&path)?;
    let metadata = file.metadata();
    let p = file.path().to_string();
    let mode = metadata_value(&metadata, "mode", &p)?.to_string();
    let config = RecurrentConfig {
        input_size: parse(&metadata, "input_size", &p)?,
        hidden_size: parse(&metadata, "hidden_size", &p)?,
        num_layers: parse(&metadata, "num_layers", &p)?,
        bias: parse(&metadata, "bias", &p)?,
        batch_first: parse(&metadata, "batch_first", &p)?,
        dropout: 0.0,
        bidirectional: parse(&metadata, "bidirectional", &p)?,
    };
    let proj_size: usize = metadata
        .get("proj_size")
        .map_or(Ok(0), |_| parse(&metadata, "proj_size", &p))?;
    let nonlinearity = match metadata.get("nonlinearity").map(String::as_str) {
        Some("relu") => Nonlinearity::Relu,
        _ => Nonlinearity::Tanh,
    };
    let dtype = metadata_value(&metadata, "dtype", &p)?.to_string();
    let description = format!(
        "{mode} {dtype} input {} hidden {} layers {}{}{}{}{}{}",
        config.input_size,
        config.hidden_size,
        config.num_layers,
        if config.bidirectional {
            " bidirectional"
        } else {
            ""
        },
        if config.batch_first {
            " batch_first"
        } else {
            ""
        },
        if config.bias { "" } else { " no-bias" },
        if proj_size > 0 {
            format!(" proj {proj_size}")
        } else {
            String::new()
        },
        if file.contains("lengths") {
            " variable-length"
        } else {
            ""
        },
    );
    let mut rng = seeded_rng(0);
    macro_rules! run {
        ($t:ty, $atol:expr, $rtol:expr) => {{
            let rows = match mode.as_str() {
                "rnn" => run_case::<$t, _>(
                    &Recurrent::rnn(&config, nonlinearity, &mut rng),
                    &file,
                    $atol,
                    $rtol,
                )?,
                "lstm" => run_case::<$t, _>(
                    &Recurrent::lstm(&config, proj_size, &mut rng),
                    &file,
                    $atol,
                    $rtol,
                )?,
                "gru" => {
                    run_case::<$t, _>(&Recurrent::gru(&config, &mut rng), &file, $atol, $rtol)?
                }
                other => {
                    return Err(RnnError::File {
                        path: p,
                        message: format!("unknown mode `{other}` (expected rnn, lstm or gru)"),
                    });
                }
            };
            ParityReport {
                path: p,
                description,
                tolerance: ($atol, $rtol),
                rows,
            }
        }};
    }
    Ok(match dtype.as_str() {
        "float64" => run!(f64, 1e-10, 1e-9),
        "float32" => run!(f32, 1e-5, 1e-4),
        other => {
            return Err(RnnError::File {
                path: p,
                message: format!("unsupported dtype `{other}` (expected float64 or float32)"),
            });
        }
    })
}

fn compare<T: Element>(
    name: &str,
    ours: &Tensor<T>,
    theirs: &Tensor<T>,
    atol: f64,
    rtol: f64,
) -> ParityRow {
    if ours.shape() != theirs.shape() {
        return ParityRow {
            name: format!("{name} (shape {:?} vs {:?})", ours.shape(), theirs.shape()),
            max_abs: f64::INFINITY,
            max_rel: f64::INFINITY,
            passed: false,
        };
    }
    let (mut max_abs, mut max_rel, mut passed) = (0.0f64, 0.0f64, true);
    for (a, b) in ours.to_vec().iter().zip(theirs.to_vec()) {
        let (a, b) = (a.to_f64_lossy(), b.to_f64_lossy());
        let diff = (a - b).abs();
        max_abs = max_abs.max(diff);
        if b != 0.0 {
            max_rel = max_rel.max(diff / b.abs());
        }
        // Written so that NaN fails the check.
        let within = diff <= atol + rtol * b.abs();
        passed &= within;
    }
    ParityRow {
        name: name.to_string(),
        max_abs,
        max_rel,
        passed,
    }
}

fn run_case<T: Element, C: Cell<T>>(
    layer: &Recurrent<T, C>,
    file: &TensorFile,
    atol: f64,
    rtol: f64,
) -> Result<Vec<ParityRow>, RnnError> {
    let bad = |message: String| RnnError::File {
        path: file.path().to_string(),
        message,
    };
    load_from(layer, file, "", false)?;
    let read = |name: &str| file.tensor::<T>(name).map_err(bad);
    let input = Var::leaf(read("input")?);
    let state_names = layer.cells()[0].state_names();
    let initial: Vec<Var<T>> = state_names
        .iter()
        .map(|s| read(&format!("{s}0")).map(Var::leaf))
        .collect::<Result<_, _>>()?;
    let lengths: Option<Vec<usize>> = if file.contains("lengths") {
        Some(
            file.integers("lengths")
                .map_err(bad)?
                .into_iter()
                .map(|l| l as usize)
                .collect(),
        )
    } else {
        None
    };
    let out = layer.forward(&input, Some(&initial), lengths.as_deref())?;
    let mut results: Vec<(String, Var<T>)> = vec![("output".into(), out.output.clone())];
    for (name, state) in state_names.iter().zip(&out.final_states) {
        results.push((format!("{name}_n"), state.clone()));
    }
    let mut loss: Option<Var<T>> = None;
    for (name, value) in &results {
        let weight = Var::constant(read(&format!("r_{name}"))?);
        let term = (value * &weight).sum(&[], false);
        loss = Some(match loss {
            None => term,
            Some(l) => &l + &term,
        });
    }
    let loss = loss.expect("at least the output");
    loss.backward()?;

    let mut rows = Vec::new();
    for (name, value) in &results {
        rows.push(compare(name, value.value(), &read(name)?, atol, rtol));
    }
    if file.contains("loss") {
        let expected = read("loss")?;
        rows.push(compare(
            "loss",
            &loss.value().reshape(expected.shape()),
            &expected,
            atol,
            rtol,
        ));
    }
    let mut grads: Vec<(String, Option<Tensor<T>>)> = vec![("input".into(), input.grad())];
    for (name, state) in state_names.iter().zip(&initial) {
        grads.push((format!("{name}0"), state.grad()));
    }
    for (name, param) in layer.named_parameters() {
        grads.push((name, param.grad()));
    }
    for (name, grad) in grads {
        let key = format!("grad.{name}");
        let expected = read(&key)?;
        let ours = grad.unwrap_or_else(|| Tensor::zeros(expected.shape()));
        rows.push(compare(&key, &ours, &expected, atol, rtol));
    }
    Ok(rows)
}
