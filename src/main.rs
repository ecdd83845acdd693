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

/// Keeps freed tensor buffers in the process instead of returning them to the kernel.
///
/// glibc serves large allocations with `mmap` and gives memory at the top of the heap back as
/// soon as it is freed, so every training step faulted in (and the kernel zeroed) the same
/// tens of megabytes of activations and gradients again: 12–15% of a medium LSTM step in
/// `perf`. Raising both thresholds lets the next step reuse the pages. The threshold cannot be
/// raised past 32 MiB, and a medium LSTM's input projection and its gradient are 52 MB each,
/// so `mmap` is switched off altogether: page faults over 6 iterations went 363,442 → 92,389
/// (what the first iteration needs) and the step 10% faster (medium LSTM, 520 → 466 ms,
/// medians of 5 interleaved runs). The command runs on the main thread, whose glibc arena grows
/// with `brk` and so also keeps buffers larger than 64 MiB (a worker thread's arena cannot:
/// glibc maps those directly, a 262 MB input projection at T=500, B=64, H=512 for one). The peak resident
/// size is unchanged (the step needed those pages anyway); what changes is that the process
/// keeps them between steps. A program using the library sets the same with the environment
/// variables `MALLOC_MMAP_MAX_`, `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_`.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's largest accepted mmap threshold on 64-bit targets (HEAP_MAX_SIZE / 2).
        const MMAP_THRESHOLD: libc::c_int = 32 << 20;
        // SAFETY: `mallopt` only changes allocator parameters; it is called before any other
        // thread exists, and all three values are in the ranges glibc documents. Its result
        // (0 when glibc refuses a value) is ignored: these are speed settings, and a refused one
        // leaves glibc's default in place.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        }
    }
}

impl Command {
    /// The threads a command asks for with `--threads`, if it has that option.
    fn threads(&self) -> Option<usize> {
        match self {
            Command::Compare(args) => Some(args.task.threads),
            Command::Train(args) => Some(args.task.threads),
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
    keep_freed_memory();
    let cli = Cli::parse();
    // The command runs on this thread, which works on every large op itself, next to
    // `threads − 1` helpers (see `tensor::set_num_threads`).
    let result = match cli.command.threads() {
        Some(threads) => tapeloop::tensor::set_num_threads(threads).map_err(|e| e.to_string()),
        None => Ok(()),
    }
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
