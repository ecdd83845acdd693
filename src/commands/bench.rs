//! `tapeloop bench`: time one training step of a recurrent layer, as PyTorch's fastrnns does.
//!
//! The step is forward, loss = Σ output ⊙ R for a fixed random R, and backward. The input needs
//! no gradient (as `x = torch.randn(...)` in PyTorch). Reports the median and minimum of the
//! forward pass alone and of forward plus backward, and the GFLOP/s the step's matrix multiplies
//! achieve.

use std::time::Instant;

use clap::Args;
use rnn::init::{linear_projection, uniform_parameter};
use rnn::{
    Cell, Elementwise, Parameter, Recurrent, RecurrentConfig, Scalar, Tensor, TensorRng, Var,
    seeded_rng,
};
use tapeloop::model::{AnyRecurrent, CellKind};

/// Options of `tapeloop bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The cell.
    #[arg(long, default_value = "lstm")]
    pub cell: CellKind,
    /// Steps per sequence.
    #[arg(long, default_value_t = 50, value_parser = super::positive)]
    pub seq_len: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32, value_parser = super::positive)]
    pub batch: usize,
    /// Input features.
    #[arg(long, default_value_t = 128, value_parser = super::positive)]
    pub input: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 128, value_parser = super::positive)]
    pub hidden: usize,
    /// Stacked layers.
    #[arg(long, default_value_t = 1, value_parser = super::positive)]
    pub layers: usize,
    /// Time an LSTM written as a user-defined cell from public ops instead of the built-in one.
    #[arg(long)]
    pub custom: bool,
    /// Untimed warm-up iterations.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 20, value_parser = super::positive)]
    pub iterations: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print the process's peak and current resident set (VmHWM and VmRSS from
    /// /proc/self/status, Linux only) after the warm-up and after the timed iterations.
    #[arg(long)]
    pub report_rss: bool,
}

/// Resident-set sizes of this process, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    /// The peak so far (VmHWM).
    pub peak_kib: u64,
    /// The current size (VmRSS).
    pub current_kib: u64,
}

/// The value of a `name:   1234 kB` line of a /proc file's `text`, in KiB.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        line.strip_prefix(name)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// This process's VmHWM and VmRSS from /proc/self/status; `None` where that file is absent.
pub fn read_rss() -> Option<Rss> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(Rss {
        peak_kib: kib_field(&status, "VmHWM:")?,
        current_kib: kib_field(&status, "VmRSS:")?,
    })
}

/// An LSTM cell exactly as a user would write it with public ops: this is what `--custom`
/// times, to show that a user's own cell runs at the built-in cell's speed. Its elementwise
/// body is a [`Var::fused`] function of its own, the documented way to make one pass of it.
pub struct UserLstmCell {
    weight_ih: Parameter<f32>,
    weight_hh: Parameter<f32>,
    bias_ih: Parameter<f32>,
    bias_hh: Parameter<f32>,
}

impl UserLstmCell {
    /// PyTorch's default initialization.
    pub fn new(input: usize, hidden: usize, rng: &mut TensorRng) -> Self {
        Self {
            weight_ih: uniform_parameter(&[4 * hidden, input], hidden, rng),
            weight_hh: uniform_parameter(&[4 * hidden, hidden], hidden, rng),
            bias_ih: uniform_parameter(&[4 * hidden], hidden, rng),
            bias_hh: uniform_parameter(&[4 * hidden], hidden, rng),
        }
    }
}

impl Cell<f32> for UserLstmCell {
    fn input_size(&self) -> usize {
        self.weight_ih.shape()[1]
    }

    fn state_sizes(&self) -> Vec<usize> {
        let hidden = self.weight_hh.shape()[1];
        vec![hidden, hidden]
    }

    fn project_inputs(&self, x: &Var<f32>) -> Var<f32> {
        linear_projection(x, &self.weight_ih, Some(&self.bias_ih))
    }

    fn step(&self, x: &Var<f32>, state: &[Var<f32>]) -> Vec<Var<f32>> {
        let gates = x + &linear_projection(&state[0], &self.weight_hh, Some(&self.bias_hh));
        let g = gates.chunk(4, 1);
        let c = Var::fused(
            "user_cell_state",
            [&g[0], &g[1], &g[2], &state[1]],
            UserCellState,
        );
        let h = Var::fused("user_hidden_state", [&g[3], &c], UserHiddenState);
        vec![h, c]
    }

    fn parameters(&self) -> Vec<(String, Parameter<f32>)> {
        vec![
            ("weight_ih".into(), self.weight_ih.clone()),
            ("weight_hh".into(), self.weight_hh.clone()),
            ("bias_ih".into(), self.bias_ih.clone()),
            ("bias_hh".into(), self.bias_hh.clone()),
        ]
    }
}

/// The user cell's `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`.
struct UserCellState;

impl Elementwise<4> for UserCellState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [i, f, g, c]: [S; 4]) -> S {
        f.sigmoid() * c + i.sigmoid() * g.tanh()
    }
}

/// The user cell's `h' = σ(o) ⊙ tanh(c')`.
struct UserHiddenState;

impl Elementwise<2> for UserHiddenState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [o, c]: [S; 2]) -> S {
        o.sigmoid() * c.tanh()
    }
}

/// A layer's forward pass, returning its output.
type Forward = dyn Fn(&Var<f32>) -> Var<f32>;

/// What was measured.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Forward pass, median milliseconds.
    pub forward_median_ms: f64,
    /// Forward pass, minimum milliseconds.
    pub forward_min_ms: f64,
    /// Forward plus backward, median milliseconds.
    pub step_median_ms: f64,
    /// Forward plus backward, minimum milliseconds.
    pub step_min_ms: f64,
    /// Matrix-multiply FLOPs of one training step.
    pub flops: f64,
    /// Resident set after the warm-up (with `--report-rss`).
    pub rss_after_warmup: Option<Rss>,
    /// Resident set after the timed iterations (with `--report-rss`).
    pub rss_after_run: Option<Rss>,
}

/// Gate blocks per cell.
fn gates(kind: CellKind) -> usize {
    match kind {
        CellKind::Rnn => 1,
        CellKind::Lstm => 4,
        CellKind::Gru => 3,
    }
}

/// The matmul FLOPs of one forward+backward step: forward (input projection and recurrent
/// product), weight gradients (the same again), hidden-state gradients (the recurrent product
/// again) and input gradients for layers after the first.
pub fn step_flops(args: &BenchArgs) -> f64 {
    let (t, b, h) = (args.seq_len as f64, args.batch as f64, args.hidden as f64);
    let g = gates(args.cell) as f64;
    (0..args.layers)
        .map(|layer| {
            let input = if layer == 0 { args.input as f64 } else { h };
            let projection = 2.0 * t * b * input * g * h;
            let recurrent = 2.0 * t * b * h * g * h;
            let input_gradient = if layer == 0 { 0.0 } else { projection };
            2.0 * (projection + recurrent) + recurrent + input_gradient
        })
        .sum()
}

/// Bytes the run holds before its first step: the layer's f32 weights and biases, the input
/// and the loss weights R. A lower bound: gradients and the step's activations come on top.
/// In `f64`, so that no size overflows.
pub fn resident_bytes_lower_bound(args: &BenchArgs) -> f64 {
    let (t, b, h) = (args.seq_len as f64, args.batch as f64, args.hidden as f64);
    let g = gates(args.cell) as f64;
    let weights: f64 = (0..args.layers)
        .map(|layer| {
            let input = if layer == 0 { args.input as f64 } else { h };
            g * h * (input + h) + 2.0 * g * h
        })
        .sum();
    4.0 * (weights + t * b * (args.input as f64 + h))
}

/// `MemAvailable` from /proc/meminfo, in bytes; `None` where that file is absent.
fn available_memory() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some(kib_field(&meminfo, "MemAvailable:")? as f64 * 1024.0)
}

/// Refuses a configuration whose weights and inputs alone exceed the memory the machine has
/// free: allocating them would end in the kernel's out-of-memory kill, not a message.
fn check_memory(args: &BenchArgs) -> Result<(), String> {
    let needed = resident_bytes_lower_bound(args);
    match available_memory() {
        Some(available) if needed > available => Err(format!(
            "bench: the weights and inputs of this configuration alone need {:.1} GB, and the \
             machine has {:.1} GB available (hidden {}, input {}, layers {}, seq-len {}, batch {})",
            needed / 1e9,
            available / 1e9,
            args.hidden,
            args.input,
            args.layers,
            args.seq_len,
            args.batch
        )),
        _ => Ok(()),
    }
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    }
}

/// Times the configuration.
pub fn measure(args: &BenchArgs) -> Result<BenchResult, String> {
    if args.custom && args.cell != CellKind::Lstm {
        return Err("--custom times a user-written LSTM cell: use it with --cell lstm".into());
    }
    check_memory(args)?;
    let mut rng = seeded_rng(0);
    let config = RecurrentConfig::new(args.input, args.hidden).num_layers(args.layers);
    let forward: Box<Forward> = if args.custom {
        let layer: Recurrent<f32, UserLstmCell> =
            Recurrent::with_cells(&config, &mut rng, |input, rng| {
                UserLstmCell::new(input, args.hidden, rng)
            })
            .map_err(|e| e.to_string())?;
        Box::new(move |x| layer.forward(x, None, None).expect("shapes fit").output)
    } else {
        let layer = AnyRecurrent::new(args.cell, &config, &mut rng);
        Box::new(move |x| layer.forward(x, None, None).expect("shapes fit").output)
    };
    let x = Var::constant(Tensor::<f32>::randn(
        &[args.seq_len, args.batch, args.input],
        &mut rng,
    ));
    let r = Var::constant(Tensor::<f32>::randn(
        &[args.seq_len, args.batch, args.hidden],
        &mut rng,
    ));
    let step = || {
        let loss = (&forward(&x) * &r).sum(&[], false);
        loss.backward().expect("the loss is a scalar on the tape");
    };
    for _ in 0..args.warmup {
        step();
    }
    let rss_after_warmup = if args.report_rss { read_rss() } else { None };
    let mut forward_times = Vec::with_capacity(args.iterations);
    let mut step_times = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations.max(1) {
        let start = Instant::now();
        let out = forward(&x);
        forward_times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(out);
        let start = Instant::now();
        step();
        step_times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(BenchResult {
        forward_min_ms: forward_times.iter().copied().fold(f64::INFINITY, f64::min),
        forward_median_ms: median(&mut forward_times),
        step_min_ms: step_times.iter().copied().fold(f64::INFINITY, f64::min),
        step_median_ms: median(&mut step_times),
        flops: step_flops(args),
        rss_after_warmup,
        rss_after_run: if args.report_rss { read_rss() } else { None },
    })
}

/// Runs and prints.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    let result = measure(args)?;
    let gflops = result.flops / (result.step_median_ms * 1e-3) / 1e9;
    let name = if args.custom {
        "lstm-custom".to_string()
    } else {
        args.cell.to_string()
    };
    if args.json {
        let mut json = serde_json::json!({
            "cell": name, "seq_len": args.seq_len, "batch": args.batch, "input": args.input,
            "hidden": args.hidden, "layers": args.layers, "iterations": args.iterations,
            "forward_median_ms": result.forward_median_ms, "forward_min_ms": result.forward_min_ms,
            "step_median_ms": result.step_median_ms, "step_min_ms": result.step_min_ms,
            "gflops": gflops,
        });
        if let (Some(warm), Some(end)) = (result.rss_after_warmup, result.rss_after_run) {
            json["vm_hwm_after_warmup_kib"] = warm.peak_kib.into();
            json["vm_rss_after_warmup_kib"] = warm.current_kib.into();
            json["vm_hwm_kib"] = end.peak_kib.into();
            json["vm_rss_kib"] = end.current_kib.into();
        }
        println!("{json}");
    } else {
        println!(
            "{name} T={} B={} I={} H={} layers={}: forward median {:.3} ms (min {:.3}), forward+backward median {:.3} ms (min {:.3}), {:.1} GFLOP/s",
            args.seq_len,
            args.batch,
            args.input,
            args.hidden,
            args.layers,
            result.forward_median_ms,
            result.forward_min_ms,
            result.step_median_ms,
            result.step_min_ms,
            gflops
        );
        if let (Some(warm), Some(end)) = (result.rss_after_warmup, result.rss_after_run) {
            println!(
                "resident set: after warm-up VmHWM {} KiB, VmRSS {} KiB; after {} iterations VmHWM {} KiB, VmRSS {} KiB",
                warm.peak_kib, warm.current_kib, args.iterations, end.peak_kib, end.current_kib
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_bound_counts_weights_biases_input_and_loss_weights() {
        let args = BenchArgs {
            cell: CellKind::Lstm,
            seq_len: 50,
            batch: 32,
            input: 128,
            hidden: 128,
            layers: 2,
            custom: false,
            warmup: 0,
            iterations: 1,
            json: false,
            report_rss: false,
        };
        // Two layers of 4·128·(128 + 128) weights and 2·4·128 biases; x and R of 50·32·128.
        let floats = 2.0 * (4.0 * 128.0 * 256.0 + 2.0 * 4.0 * 128.0) + 50.0 * 32.0 * 256.0;
        assert_eq!(resident_bytes_lower_bound(&args), 4.0 * floats);
        // Sizes whose products overflow a usize are still counted.
        let huge = BenchArgs {
            hidden: 1 << 40,
            ..args
        };
        assert!(resident_bytes_lower_bound(&huge) > usize::MAX as f64);
    }
}
