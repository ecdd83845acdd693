//! `tapeloop compare`: RNN, LSTM and GRU side by side on one task — the README's main job.
//!
//! With no arguments it runs the adding problem at a lag where the plain RNN stays at the
//! baseline while the LSTM and GRU solve it.

use std::path::PathBuf;

use clap::Args;
use rnn::seeded_rng;
use tapeloop::model::CellKind;
use tapeloop::training::{SequenceModel, TrainReport, train};

use crate::commands::train::{TaskArgs, print_result, progress_bar, write_curves};

/// Options of `tapeloop compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Cells to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rnn,lstm,gru")]
    pub cells: Vec<CellKind>,
    /// Where to write the curves (CSV, PNG, SVG).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the comparison.
pub fn run(args: &CompareArgs) -> Result<(), String> {
    let resolved = args.task.resolve();
    let probe = args.task.build_task(&resolved)?;
    println!(
        "comparing {} on {} ({}hidden {}, layers {}, batch {}, {:?} lr {}, clip {:?}, {} steps each); baseline {:.4} {}",
        args.cells
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", "),
        probe.name(),
        resolved.describe_length(),
        resolved.hidden,
        resolved.layers,
        resolved.settings.batch,
        resolved.settings.optimizer,
        resolved.settings.lr,
        resolved.settings.clip,
        resolved.settings.steps,
        probe.baseline(),
        probe.metric()
    );
    let mut reports: Vec<(String, TrainReport)> = Vec::new();
    for &cell in &args.cells {
        let mut task = args.task.build_task(&resolved)?;
        let mut rng = seeded_rng(args.task.seed);
        let model = SequenceModel::new(
            cell,
            task.input_size(),
            resolved.hidden,
            resolved.layers,
            task.output_size(),
            &mut rng,
        );
        if let Some(bias) = args.task.forget_bias {
            model.recurrent.set_forget_bias(bias);
        }
        let bar = progress_bar(resolved.settings.steps, cell.name());
        let report = train(&model, task.as_mut(), &resolved.settings, |p| {
            bar.set_position(p.step);
            if let Some(e) = p.eval {
                bar.set_message(format!("held-out {:.4}", e.loss));
            }
        })?;
        bar.finish();
        print_result(cell.name(), task.as_ref(), &report);
        reports.push((cell.name().to_uppercase(), report));
    }
    println!();
    println!(
        "| cell | held-out {} | baseline | steps | time (s) | sequences/s |",
        probe.metric()
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, report) in &reports {
        let mut metric = format!("{:.4}", report.final_eval.loss);
        if let Some((s, n)) = report.final_eval.solved {
            metric.push_str(&format!(" ({s}/{n} perfect)"));
        }
        println!(
            "| {name} | {metric} | {:.4} | {} | {:.1} | {:.0} |",
            probe.baseline(),
            report.steps,
            report.seconds,
            report.sequences_per_second
        );
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/compare-{}", probe.name())));
    let runs: Vec<(String, &TrainReport)> = reports.iter().map(|(n, r)| (n.clone(), r)).collect();
    let title = format!(
        "{} (T = {}): held-out {}",
        probe.name(),
        resolved.seq_len,
        probe.metric()
    );
    write_curves(&out, &runs, probe.baseline(), probe.metric(), &title)?;
    println!("\nwrote {}/curve.csv, curve.png, curve.svg", out.display());
    Ok(())
}
