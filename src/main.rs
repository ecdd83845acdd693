//! The `tapeloop` command line: train the classic recurrent networks on the classic tasks,
//! compare them, study how their gradients flow through time, check gradients and parity.

mod commands;
mod plot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tapeloop: recurrent networks on a tape-based autodiff engine.
#[derive(Parser, Debug)]
#[command(name = "tapeloop", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train RNN, LSTM and GRU side by side on one task and tabulate them (the main job).
    Compare(commands::compare::CompareArgs),
    /// Generate text from a character model's checkpoint.
    Sample(commands::sample::SampleArgs),
    /// Time one training step (forward, backward) of a layer, for comparison with PyTorch.
    Bench(commands::bench::BenchArgs),
    /// The vanishing/exploding-gradient study: ‖∂L/∂h_k‖ against the lag, per cell.
    Flow(commands::flow::FlowArgs),
    /// Gradient-check a cell or layer configuration against finite differences.
    Gradcheck(commands::gradcheck::GradcheckArgs),
    /// Train one cell on one task (adding, copy, reber, text).
    Train(commands::train::TrainArgs),
    /// Compare against PyTorch reference cases (safetensors).
    Parity(commands::parity::ParityArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Bench(args) => commands::bench::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Sample(args) => commands::sample::run(args),
        Command::Flow(args) => commands::flow::run(args),
        Command::Gradcheck(args) => commands::gradcheck::run(args),
        Command::Parity(args) => commands::parity::run(args),
        Command::Train(args) => commands::train::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
