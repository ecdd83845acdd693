//! `tapeloop parity`: compare against PyTorch reference cases.

use std::path::PathBuf;

use clap::Args;
use rnn::parity::check_parity;

/// Options of `tapeloop parity`.
#[derive(Args, Debug)]
pub struct ParityArgs {
    /// Reference cases (safetensors files written by PyTorch; see the fixtures README).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs every case; an error when any tensor differs beyond tolerance or a file is unusable.
pub fn run(args: &ParityArgs) -> Result<(), String> {
    let mut failed = Vec::new();
    for path in &args.files {
        let report = match check_parity(path) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{e}");
                failed.push(path.display().to_string());
                continue;
            }
        };
        println!(
            "{} — {} (atol {:e}, rtol {:e})",
            report.path, report.description, report.tolerance.0, report.tolerance.1
        );
        for row in &report.rows {
            println!(
                "  {:<4} {:<32} max abs {:>10.3e}  max rel {:>10.3e}",
                if row.passed { "ok" } else { "FAIL" },
                row.name,
                row.max_abs,
                row.max_rel
            );
        }
        if !report.passed() {
            failed.push(report.path.clone());
        }
    }
    if failed.is_empty() {
        println!("all {} cases match PyTorch", args.files.len());
        Ok(())
    } else {
        Err(format!(
            "{} of {} cases failed: {}",
            failed.len(),
            args.files.len(),
            failed.join(", ")
        ))
    }
}
