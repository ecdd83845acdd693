//! `tapeloop train`: one cell on one task, with progress, evaluation, checkpoints and plots.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rnn::seeded_rng;
use serde_json::json;
use tapeloop::model::CellKind;
use tapeloop::tasks::{Adding, CharText, Copy, EmbeddedReber, Task};
use tapeloop::training::{OptimizerKind, SequenceModel, TrainReport, TrainSettings, train};

use crate::plot::{Chart, Series, write_chart};

/// The tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskName {
    /// The adding problem: remember two marked values across T steps (MSE).
    Adding,
    /// The copy task: reproduce 10 symbols after a lag of T (cross-entropy).
    Copy,
    /// The embedded Reber grammar: next-symbol prediction (Hochreiter & Schmidhuber 1997).
    Reber,
    /// A character-level language model on `--text FILE`.
    Text,
}

/// Options shared by `train` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct TaskArgs {
    /// The task.
    #[arg(long, value_enum, default_value = "adding")]
    pub task: TaskName,
    /// Sequence length (the lag T for adding and copy) [adding, copy: 100; text: 50].
    #[arg(long, value_parser = super::positive)]
    pub seq_len: Option<usize>,
    /// Hidden units [adding, copy, text: 128; reber: 16].
    #[arg(long, value_parser = super::positive)]
    pub hidden: Option<usize>,
    /// Stacked layers [text: 2; others: 1].
    #[arg(long, value_parser = super::positive)]
    pub layers: Option<usize>,
    /// Sequences per step [reber: 16; others: 50].
    #[arg(long, value_parser = super::positive)]
    pub batch: Option<usize>,
    /// Learning rate [adding, reber: 1e-2; copy: 1e-3; text: 2e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimizer: adam, rmsprop or sgd [text: rmsprop; others: adam].
    #[arg(long)]
    pub optimizer: Option<OptimizerKind>,
    /// Clip the gradient's global norm to this; 0 disables [adding, copy, reber: 1; text: 5].
    #[arg(long)]
    pub clip: Option<f64>,
    /// Optimizer steps [adding: 1500; copy: 3000; reber: 5000 (stops when solved); text: 3000].
    #[arg(long)]
    pub steps: Option<u64>,
    /// Evaluate (and checkpoint) every this many steps.
    #[arg(long, default_value_t = 100)]
    pub eval_every: u64,
    /// Seed for weights and data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads for matrix multiplies and large elementwise ops, this one included
    /// [default: TAPELOOP_NUM_THREADS, else one per core].
    #[arg(long, value_parser = super::positive)]
    pub threads: Option<usize>,
    /// The text file for `--task text`.
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// LSTM forget-gate bias at initialization (PyTorch's default init when absent).
    #[arg(long)]
    pub forget_bias: Option<f32>,
}

/// The settings after per-task defaults are filled in.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub task: TaskName,
    pub seq_len: usize,
    pub hidden: usize,
    pub layers: usize,
    pub settings: TrainSettings,
}

impl Resolved {
    /// `"T=100, "` for tasks with a set length; empty for Reber, whose strings vary.
    pub fn describe_length(&self) -> String {
        if self.task == TaskName::Reber {
            String::new()
        } else {
            format!("T={}, ", self.seq_len)
        }
    }
}

impl TaskArgs {
    /// Fills the per-task defaults.
    pub fn resolve(&self) -> Resolved {
        let t = self.task;
        // One default per task, in the order adding, copy, reber, text.
        macro_rules! pick {
            ($adding:expr, $copy:expr, $reber:expr, $text:expr) => {
                match t {
                    TaskName::Adding => $adding,
                    TaskName::Copy => $copy,
                    TaskName::Reber => $reber,
                    TaskName::Text => $text,
                }
            };
        }
        let clip = self.clip.unwrap_or(pick!(1.0, 1.0, 1.0, 5.0));
        Resolved {
            task: t,
            seq_len: self.seq_len.unwrap_or(pick!(100, 100, 0, 50)),
            hidden: self.hidden.unwrap_or(pick!(128, 128, 16, 128)),
            layers: self.layers.unwrap_or(pick!(1, 1, 1, 2)),
            settings: TrainSettings {
                steps: self.steps.unwrap_or(pick!(1500, 3000, 5000, 3000)),
                batch: self.batch.unwrap_or(pick!(50, 50, 16, 50)),
                lr: self.lr.unwrap_or(pick!(1e-2, 1e-3, 1e-2, 2e-3)),
                optimizer: self.optimizer.unwrap_or(pick!(
                    OptimizerKind::Adam,
                    OptimizerKind::Adam,
                    OptimizerKind::Adam,
                    OptimizerKind::Rmsprop
                )),
                clip: (clip > 0.0).then_some(clip),
                eval_every: self.eval_every,
                seed: self.seed,
                checkpoint: None,
                stop_when_solved: t == TaskName::Reber,
                describe: json!({}),
            },
        }
    }

    /// Builds the task.
    pub fn build_task(&self, resolved: &Resolved) -> Result<Box<dyn Task>, String> {
        if resolved.task != TaskName::Reber && resolved.seq_len < 2 {
            return Err(format!(
                "--seq-len must be at least 2, got {}",
                resolved.seq_len
            ));
        }
        Ok(match resolved.task {
            TaskName::Adding => Box::new(Adding::new(resolved.seq_len, self.seed + 1_000)),
            TaskName::Copy => Box::new(Copy::new(resolved.seq_len, self.seed + 1_000)),
            TaskName::Reber => Box::new(EmbeddedReber::new(self.seed + 1_000)),
            TaskName::Text => {
                let path = self.text.as_ref().ok_or("--task text needs --text FILE")?;
                Box::new(
                    CharText::from_file(path, resolved.seq_len, self.seed + 1_000)
                        .map_err(|e| e.to_string())?,
                )
            }
        })
    }
}

/// Options of `tapeloop train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// The cell.
    #[arg(long, default_value = "lstm")]
    pub cell: CellKind,
    /// Save checkpoints here, and resume from the latest one if present.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Where to write the loss curve (CSV, PNG, SVG).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A progress bar showing loss, held-out loss and throughput.
pub fn progress_bar(steps: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>5} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Writes `curve.csv` and `curve.png/svg` for one or more runs.
pub fn write_curves(
    out: &Path,
    runs: &[(String, &TrainReport)],
    baseline: f64,
    metric: &str,
    title: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut csv = String::from("run,step,train_loss,eval_loss,eval_solved\n");
    let mut series = Vec::new();
    for (name, report) in runs {
        for p in &report.curve {
            csv.push_str(&format!(
                "{name},{},{},{},{}\n",
                p.step,
                p.train_loss,
                p.eval.map_or(String::new(), |e| e.loss.to_string()),
                p.eval
                    .and_then(|e| e.solved)
                    .map_or(String::new(), |(s, _)| s.to_string())
            ));
        }
        series.push(Series {
            name: format!("{name} (held-out)"),
            points: report
                .curve
                .iter()
                .filter_map(|p| Some((p.step as f64, p.eval?.loss)))
                .collect(),
        });
    }
    let csv_path = out.join("curve.csv");
    std::fs::write(&csv_path, csv)
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    write_chart(
        &out.join("curve"),
        &Chart {
            title,
            x_label: "optimizer step",
            y_label: metric,
            log_y: true,
            series: &series,
            references: &[("baseline".to_string(), baseline)],
        },
    )
}

/// Runs `train`.
pub fn run(args: &TrainArgs) -> Result<(), String> {
    let mut resolved = args.task.resolve();
    let mut task = args.task.build_task(&resolved)?;
    let mut rng = seeded_rng(args.task.seed);
    let model = SequenceModel::new(
        args.cell,
        task.input_size(),
        resolved.hidden,
        resolved.layers,
        task.output_size(),
        &mut rng,
    );
    if let Some(bias) = args.task.forget_bias {
        model.recurrent.set_forget_bias(bias);
    }
    resolved.settings.checkpoint = args.checkpoint.clone();
    resolved.settings.describe = json!({
        "task": format!("{:?}", resolved.task).to_lowercase(),
        "cell": args.cell.name(),
        "hidden": resolved.hidden,
        "layers": resolved.layers,
        "seq_len": resolved.seq_len,
        "input_size": task.input_size(),
        "output_size": task.output_size(),
        "vocabulary": task.vocabulary().map(|v| v.iter().collect::<String>()),
    });
    let settings = &resolved.settings;
    println!(
        "training {} on {} ({}hidden {}, layers {}, batch {}, {:?} lr {}, clip {:?}, {} steps); baseline {:.4} {}",
        args.cell,
        task.name(),
        resolved.describe_length(),
        resolved.hidden,
        resolved.layers,
        settings.batch,
        settings.optimizer,
        settings.lr,
        settings.clip,
        settings.steps,
        task.baseline(),
        task.metric()
    );
    let bar = progress_bar(settings.steps, args.cell.name());
    let started = std::time::Instant::now();
    let mut held_out = String::from("-");
    let report = train(&model, task.as_mut(), settings, |p| {
        if let Some(e) = p.eval {
            held_out = format!("{:.4}", e.loss);
            if let Some((s, n)) = e.solved {
                held_out.push_str(&format!(" solved {s}/{n}"));
            }
        }
        let rate =
            p.step as f64 * settings.batch as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(p.step);
        bar.set_message(format!(
            "loss {:.4} held-out {held_out} {:.0} seq/s",
            p.train_loss, rate
        ));
    })?;
    bar.finish();
    print_result(args.cell.name(), task.as_ref(), &report);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", task.name(), args.cell)));
    let title = format!(
        "{} on {} (T = {})",
        args.cell.name().to_uppercase(),
        task.name(),
        resolved.seq_len
    );
    write_curves(
        &out,
        &[(args.cell.name().to_uppercase(), &report)],
        task.baseline(),
        task.metric(),
        &title,
    )?;
    println!("wrote {}/curve.csv, curve.png, curve.svg", out.display());
    Ok(())
}

/// The final line of results.
pub fn print_result(name: &str, task: &dyn Task, report: &TrainReport) {
    let e = report.final_eval;
    let mut line = format!(
        "result: {name} {} held-out {:.4} {} (baseline {:.4}) after {} steps, {:.1} s, {:.0} sequences/s",
        task.name(),
        e.loss,
        task.metric(),
        task.baseline(),
        report.steps,
        report.seconds,
        report.sequences_per_second
    );
    if task.metric() == "nats/char" {
        line.push_str(&format!(
            ", {:.3} bits/char",
            e.loss / std::f64::consts::LN_2
        ));
    }
    if let Some((s, n)) = e.solved {
        line.push_str(&format!(", {s}/{n} held-out strings perfect"));
    }
    if let Some(seen) = report.solved_after_sequences {
        line.push_str(&format!(", solved after {seen} training strings"));
    }
    println!("{line}");
}
