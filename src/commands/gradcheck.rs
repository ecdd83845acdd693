//! `tapeloop gradcheck`: BPTT from the tape against central finite differences for a cell or
//! layer configuration, printing the largest error.

use clap::Args;
use rnn::autograd::GradcheckOptions;
use rnn::check::check_layer;
use rnn::{Gru, Lstm, Nonlinearity, RecurrentConfig, Rnn, seeded_rng};
use tapeloop::model::CellKind;

/// Options of `tapeloop gradcheck`.
#[derive(Args, Debug)]
pub struct GradcheckArgs {
    /// The cell.
    #[arg(long, default_value = "lstm")]
    pub cell: CellKind,
    /// Stacked layers.
    #[arg(long, default_value_t = 1, value_parser = super::positive)]
    pub layers: usize,
    /// Add the reverse direction.
    #[arg(long)]
    pub bidirectional: bool,
    /// Input features.
    #[arg(long, default_value_t = 3, value_parser = super::positive)]
    pub input: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 4, value_parser = super::positive)]
    pub hidden: usize,
    /// LSTM projection size (0: none).
    #[arg(long, default_value_t = 0)]
    pub proj: usize,
    /// Steps per sequence.
    #[arg(long, default_value_t = 5, value_parser = super::positive)]
    pub seq_len: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 2, value_parser = super::positive)]
    pub batch: usize,
    /// Give the sequences different lengths (the first full, the others shorter).
    #[arg(long)]
    pub variable_length: bool,
    /// Batch-major input.
    #[arg(long)]
    pub batch_first: bool,
    /// Cells without biases.
    #[arg(long)]
    pub no_bias: bool,
    /// ReLU instead of tanh for the plain RNN.
    #[arg(long)]
    pub relu: bool,
    /// Seed for weights and inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs the check; an error describes the worst mismatch.
pub fn run(args: &GradcheckArgs) -> Result<(), String> {
    if args.seq_len == 0
        || args.batch == 0
        || args.hidden == 0
        || args.input == 0
        || args.layers == 0
    {
        return Err(
            "--seq-len, --batch, --hidden, --input and --layers must all be positive".into(),
        );
    }
    if args.proj > 0 && (args.cell != CellKind::Lstm || args.proj >= args.hidden) {
        return Err(format!(
            "--proj {} needs --cell lstm and must be below --hidden {}",
            args.proj, args.hidden
        ));
    }
    let config = RecurrentConfig::new(args.input, args.hidden)
        .num_layers(args.layers)
        .bidirectional(args.bidirectional)
        .batch_first(args.batch_first)
        .bias(!args.no_bias);
    let lengths: Option<Vec<usize>> = args.variable_length.then(|| {
        (0..args.batch)
            .map(|b| (args.seq_len - b % args.seq_len).max(1))
            .collect()
    });
    let mut rng = seeded_rng(args.seed);
    let options = GradcheckOptions::default();
    let lengths = lengths.as_deref();
    let report = match args.cell {
        CellKind::Rnn => {
            let nonlinearity = if args.relu {
                Nonlinearity::Relu
            } else {
                Nonlinearity::Tanh
            };
            check_layer(
                &Rnn::<f64>::rnn(&config, nonlinearity, &mut rng),
                args.seq_len,
                args.batch,
                lengths,
                &options,
                &mut rng,
            )
        }
        CellKind::Lstm => check_layer(
            &Lstm::<f64>::lstm(&config, args.proj, &mut rng),
            args.seq_len,
            args.batch,
            lengths,
            &options,
            &mut rng,
        ),
        CellKind::Gru => check_layer(
            &Gru::<f64>::gru(&config, &mut rng),
            args.seq_len,
            args.batch,
            lengths,
            &options,
            &mut rng,
        ),
    }
    .map_err(|e| format!("gradcheck FAILED: {e}"))?;
    println!(
        "gradcheck passed: {} {config:?}{}\n  inputs and initial states: {} entries, largest |analytical − numerical| = {:.3e}\n  parameters: {} entries, largest |analytical − numerical| = {:.3e}\n  (eps {:e}, atol {:e}, rtol {:e}, f64)",
        args.cell,
        lengths.map_or(String::new(), |l| format!(" lengths {l:?}")),
        report.inputs.compared,
        report.inputs.max_abs_error,
        report.parameters.compared,
        report.parameters.max_abs_error,
        options.eps,
        options.atol,
        options.rtol
    );
    Ok(())
}
