//! `tapeloop flow`: the vanishing/exploding-gradient study.
//!
//! For each cell, ‖∂L/∂h_k‖ for every step k of a sequence, where L depends only on the last
//! step, read from the tape (one backward pass gives the gradient at every retained step),
//! averaged over random sequences and shown against the lag T − k on a log scale.

use std::path::PathBuf;

use clap::Args;
use rnn::autograd::{BackwardOptions, grad};
use rnn::io::load_module;
use rnn::train::{checkpoint_info, current_checkpoint_dir};
use rnn::{Module, RecurrentConfig, Tensor, Var, seeded_rng};
use tapeloop::model::{AnyRecurrent, CellKind};
use tapeloop::tasks::{Adding, Task};
use tapeloop::training::SequenceModel;

use crate::plot::{Chart, Series, write_chart};

/// Options of `tapeloop flow`.
#[derive(Args, Debug)]
pub struct FlowArgs {
    /// Cells to study, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rnn,lstm,gru")]
    pub cells: Vec<CellKind>,
    /// Sequence length T.
    #[arg(long, default_value_t = 100, value_parser = super::positive)]
    pub seq_len: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32, value_parser = super::positive)]
    pub batch: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 128, value_parser = super::positive)]
    pub hidden: usize,
    /// Multiply every recurrent weight matrix by this (small: vanishing; large: exploding).
    #[arg(long, default_value_t = 1.0)]
    pub weight_scale: f32,
    /// Forget-gate bias for the LSTM (PyTorch's default init when absent).
    #[arg(long)]
    pub forget_bias: Option<f32>,
    /// Batches of random sequences to average over.
    #[arg(long, default_value_t = 4, value_parser = super::positive)]
    pub samples: usize,
    /// Seed for weights and data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Study a model trained by `train --task adding --checkpoint DIR` instead of fresh ones
    /// (its cell replaces `--cells`; L is its own read-out of the last step).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Where to write flow.csv, flow.png and flow.svg.
    #[arg(long, default_value = "runs/flow")]
    pub out: PathBuf,
}

/// ‖∂L/∂h_k‖ averaged over sequences, for k = 0..T−1, with L = Σ_b r·h_T(b) for a fixed random
/// r, or for a trained model's own read-out vector r.
pub fn gradient_norms(
    layer: &AnyRecurrent,
    readout: Option<Tensor<f32>>,
    task: &mut Adding,
    batch: usize,
    samples: usize,
    seed: u64,
) -> Vec<f64> {
    let mut rng = seeded_rng(seed);
    let steps = task.seq_len;
    let hidden = layer.config().hidden_size;
    let readout =
        Var::constant(readout.unwrap_or_else(|| Tensor::<f32>::randn(&[hidden], &mut rng)));
    let mut totals = vec![0.0f64; steps];
    for _ in 0..samples {
        let inputs = Var::constant(task.train_batch(batch, &mut rng).inputs);
        let out = layer
            .forward(&inputs, None, None)
            .expect("inputs fit the layer");
        let top = out.steps.len() - 1;
        let states: Vec<Var<f32>> = out.steps[top].iter().map(|s| s[0].clone()).collect();
        let loss = (&states[steps - 1] * &readout).sum(&[], false);
        let grads = grad(&[loss], &states, None, BackwardOptions::default(), true)
            .expect("states are on the tape");
        for (k, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                // Per-sequence norms, averaged over the batch. In f64: squaring an f32
                // gradient entry below ~1e-19 underflows, and at long lags the ratios reach
                // 1e-23 (they read exactly 0 before).
                let norms = g.value().cast::<f64>().square().sum(&[1], false).sqrt();
                totals[k] += norms.mean(&[], false).item() / samples as f64;
            }
        }
    }
    totals
}

/// The largest singular value of a matrix, by power iteration on WᵀW (in f64).
pub fn largest_singular_value(w: &Tensor<f32>) -> f64 {
    let w = w.cast::<f64>();
    let gram = w.t().matmul(&w);
    let mut v = Tensor::<f64>::ones(&[gram.shape()[0], 1]);
    let mut eigenvalue = 0.0;
    for _ in 0..500 {
        let next = gram.matmul(&v);
        let norm = next.norm_l2(&[], false).item();
        if norm == 0.0 {
            return 0.0;
        }
        v = next.mul_scalar(1.0 / norm);
        eigenvalue = norm;
    }
    eigenvalue.sqrt()
}

/// Rebuilds a model trained on the adding task from its checkpoint.
fn load_trained(dir: &std::path::Path) -> Result<SequenceModel, String> {
    let info = checkpoint_info(dir).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        info.extra
            .get(name)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| {
                format!(
                    "{}: the checkpoint does not describe its model (no `{name}`)",
                    dir.display()
                )
            })
    };
    let task = info
        .extra
        .get("task")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if task != "adding" || field("input_size")? != 2 || field("output_size")? != 1 {
        return Err(format!(
            "{}: flow needs a model trained on the adding task, this one was trained on `{task}`",
            dir.display()
        ));
    }
    let cell: CellKind = info
        .extra
        .get("cell")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .parse()?;
    let model = SequenceModel::new(
        cell,
        2,
        field("hidden")?,
        field("layers")?,
        1,
        &mut seeded_rng(0),
    );
    let directory = current_checkpoint_dir(dir).map_err(|e| e.to_string())?;
    load_module(&model, directory.join("model.safetensors")).map_err(|e| e.to_string())?;
    println!(
        "studying the {cell} trained for {} steps in {}",
        info.step,
        dir.display()
    );
    Ok(model)
}

/// Runs the study and prints and plots it.
pub fn run(args: &FlowArgs) -> Result<(), String> {
    if args.seq_len < 2 {
        return Err(format!(
            "--seq-len must be at least 2, got {}",
            args.seq_len
        ));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    println!(
        "gradient flow: T={} batch={} hidden={} weight-scale={} forget-bias={}  (L depends only on h_T)",
        args.seq_len,
        args.batch,
        args.hidden,
        args.weight_scale,
        args.forget_bias.map_or("default".into(), |b| b.to_string())
    );
    let mut series = Vec::new();
    let mut fresh: Vec<AnyRecurrent> = Vec::new();
    let mut csv = String::from("cell,lag,grad_norm,ratio\n");
    println!(
        "{:<6} {:>14} {:>14} {:>14}",
        "cell", "ratio k=10", "ratio k=50", "ratio k=T-1"
    );
    let trained = args
        .checkpoint
        .as_ref()
        .map(|dir| load_trained(dir))
        .transpose()?;
    let cells = match &trained {
        Some(model) => vec![model.recurrent.kind()],
        None => args.cells.clone(),
    };
    for &kind in &cells {
        let (layer, readout) = match &trained {
            Some(model) => {
                // The model's read-out is [1, hidden]: L = Σ_b w·h_T(b) (+ a constant bias).
                let weight = model.head.weight.value();
                let hidden = weight.shape()[1];
                (&model.recurrent, Some(weight.reshape(&[hidden])))
            }
            None => {
                let config = RecurrentConfig::new(2, args.hidden);
                fresh.push(AnyRecurrent::new(kind, &config, &mut seeded_rng(args.seed)));
                (fresh.last().expect("just pushed"), None)
            }
        };
        if let Some(bias) = args.forget_bias {
            layer.set_forget_bias(bias);
        }
        if args.weight_scale != 1.0 {
            layer.scale_recurrent_weights(args.weight_scale);
        }
        let mut task = Adding::new(args.seq_len, args.seed);
        let norms = gradient_norms(
            layer,
            readout,
            &mut task,
            args.batch,
            args.samples,
            args.seed + 1,
        );
        let last = norms[args.seq_len - 1];
        let ratio = |lag: usize| {
            if lag < args.seq_len {
                norms[args.seq_len - 1 - lag] / last
            } else {
                f64::NAN
            }
        };
        println!(
            "{:<6} {:>14.3e} {:>14.3e} {:>14.3e}",
            kind.name(),
            ratio(10),
            ratio(50),
            ratio(args.seq_len - 1)
        );
        if kind == CellKind::Rnn {
            let w_hh = layer
                .named_parameters()
                .into_iter()
                .find(|(n, _)| n == "weight_hh_l0")
                .map(|(_, p)| p.value())
                .expect("an RNN has weight_hh_l0");
            let sigma = largest_singular_value(&w_hh);
            println!(
                "       σ_max(W_hh) = {sigma:.4}: {} (Pascanu et al. 2013: vanishing is guaranteed when σ_max < 1/γ = 1 for tanh; ‖∂h_T/∂h_k‖ ≤ σ_max^(T−k), e.g. {:.3e} at lag 50)",
                if sigma < 1.0 {
                    "below 1, so gradients must vanish"
                } else {
                    "above 1: explosion is possible (not guaranteed)"
                },
                sigma.powi(50)
            );
        }
        let mut points = Vec::with_capacity(args.seq_len);
        for (k, &n) in norms.iter().enumerate() {
            let lag = args.seq_len - 1 - k;
            csv.push_str(&format!("{},{},{:e},{:e}\n", kind.name(), lag, n, n / last));
            points.push((lag as f64, n / last));
        }
        series.push(Series {
            name: kind.name().to_uppercase(),
            points,
        });
    }
    let csv_path = args.out.join("flow.csv");
    std::fs::write(&csv_path, csv)
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let title = format!("‖∂L/∂h_(T−k)‖ / ‖∂L/∂h_T‖, T = {}", args.seq_len);
    write_chart(
        &args.out.join("flow"),
        &Chart {
            title: &title,
            x_label: "lag k",
            y_label: "gradient norm ratio",
            log_y: true,
            series: &series,
            references: &[],
        },
    )?;
    println!("wrote {}, flow.png and flow.svg", csv_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_at_the_longest_lags_do_not_underflow_to_zero() {
        // A tanh RNN at default init loses ~20 orders of magnitude over 100 steps: squared f32
        // entries of such a gradient underflow, so an f32 norm read exactly 0 here.
        let config = RecurrentConfig::new(2, 128);
        let layer = AnyRecurrent::new(CellKind::Rnn, &config, &mut seeded_rng(0));
        let mut task = Adding::new(100, 0);
        let norms = gradient_norms(&layer, None, &mut task, 32, 1, 1);
        let ratio = norms[0] / norms[99];
        assert!(ratio > 0.0 && ratio < 1e-15, "ratio at lag 99: {ratio:e}");
    }
}
