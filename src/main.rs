//! The `tapeloop` command line: train the classic recurrent networks on the classic tasks,
//! compare them, study how their gradients flow through time, check gradients and parity.

mod commands;
mod plot;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator. A recorded op allocates several small blocks (its
/// node, its backward rule, its result) and a training step frees them all again, a pattern
/// glibc serves through its slower bins once the per-size cache of 7 is used up: `malloc` and
/// `free` were a fifth of a tiny LSTM step's instructions. Measured with `tapeloop bench`,
/// 6 interleaved rounds, medians (minima): tiny LSTM (T=20, B=1, H=16) 0.516 → 0.423 ms
/// (0.386 → 0.295), tiny GRU 0.616 → 0.558; small LSTM (T=50, B=32, H=128) 18.4 → 16.2 ms,
/// GRU 16.3 → 15.1; medium LSTM (T=100, B=64, H=512) 485 against 482 ms. It keeps freed
/// pages for reuse without the `mallopt` tuning glibc needed here: a medium run faulted 24,614
/// pages against glibc's 82,093 with that tuning. The price is memory held: peak RSS of an
/// LSTM at T=1000, B=16, H=128 went 192 → 300 MB (glibc measured in the same session), flat
/// at 277–286 MB over 1,000 iterations. A program using the library chooses its own
/// allocator; these two lines make the same choice.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

impl Command {
    /// The threads a command asks for with `--threads`, if it has that option and it was given.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Compare(args) => args.task.threads,
            Command::Train(args) => args.task.threads,
            _ => None,
        }
    }

    fn run(&self) -> Result<(), String> {
        match self {
            Command::Bench(args) => commands::bench::run(args),
            Command::Compare(args) => commands::compare::run(args),
            Command::Sample(args) => commands::sample::run(args),
            Command::Flow(args) => commands::flow::run(args),
            Command::Gradcheck(args) => commands::gradcheck::run(args),
            Command::Parity(args) => commands::parity::run(args),
            Command::Train(args) => commands::train::run(args),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The command runs on this thread, which works on every large op itself, next to
    // `threads − 1` helpers (see `tensor::set_num_threads`).
    // A bad TAPELOOP_NUM_THREADS is reported rather than silently replaced by the default;
    // `--threads` takes precedence over a good one.
    let result = tapeloop::tensor::threads_from_environment()
        .and_then(
            |from_environment| match cli.command.threads().or(from_environment) {
                Some(threads) => tapeloop::tensor::set_num_threads(threads),
                None => Ok(()),
            },
        )
        .map_err(|e| e.to_string())
        .and_then(|()| cli.command.run());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A size of 0 is refused while parsing, with the flag named, for every command that
    /// builds a layer (before, `bench --hidden 0` and `train --layers 0` panicked and
    /// `train --batch 0` trained on nothing).
    #[test]
    fn zero_sizes_are_refused_naming_the_flag() {
        for (command, flag) in [
            ("bench", "--hidden"),
            ("bench", "--seq-len"),
            ("bench", "--layers"),
            ("train", "--batch"),
            ("train", "--hidden"),
            ("train", "--threads"),
            ("compare", "--threads"),
            ("gradcheck", "--input"),
            ("flow", "--samples"),
        ] {
            let error = Cli::try_parse_from(["tapeloop", command, flag, "0"]).unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains(flag) && message.contains("must be at least 1"),
                "{command} {flag} 0: {message}"
            );
        }
        assert!(Cli::try_parse_from(["tapeloop", "bench", "--hidden", "1"]).is_ok());
        // Flags that are not sizes keep their own parsers (a fractional forget bias, a zero
        // projection size).
        assert!(Cli::try_parse_from(["tapeloop", "train", "--forget-bias", "1.5"]).is_ok());
        assert!(Cli::try_parse_from(["tapeloop", "gradcheck", "--proj", "0"]).is_ok());
        assert!(
            Cli::try_parse_from(["tapeloop", "train", "--batch", "x"])
                .unwrap_err()
                .to_string()
                .contains("invalid digit")
        );
    }
}
