//! `tapeloop sample`: generate text from a character model trained with `train --task text`.

use std::path::PathBuf;

use clap::Args;
use rand::RngExt;
use rnn::autograd::no_grad;
use rnn::io::load_module;
use rnn::train::{checkpoint_info, current_checkpoint_dir};
use rnn::{Module, Tensor, Var, seeded_rng};
use tapeloop::model::CellKind;
use tapeloop::training::SequenceModel;

/// Options of `tapeloop sample`.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A checkpoint directory written by `train --task text --checkpoint DIR`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Characters to generate.
    #[arg(long, default_value_t = 500)]
    pub length: usize,
    /// Softmax temperature: below 1 is more conservative, above 1 more adventurous.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Text to start from (its characters must be in the model's vocabulary).
    #[arg(long, default_value = "\n")]
    pub prime: String,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Rebuilds the model from the checkpoint and samples.
pub fn run(args: &SampleArgs) -> Result<(), String> {
    if args.temperature <= 0.0 || !args.temperature.is_finite() {
        return Err(format!(
            "--temperature must be positive, got {}",
            args.temperature
        ));
    }
    let info = checkpoint_info(&args.checkpoint).map_err(|e| e.to_string())?;
    let describe = &info.extra;
    let field = |name: &str| {
        describe
            .get(name)
            .and_then(|v| v.as_u64())
            .map(|v| v as usize)
            .ok_or_else(|| {
                format!(
                    "{}: the checkpoint does not describe a text model (no `{name}`)",
                    args.checkpoint.display()
                )
            })
    };
    let vocabulary: Vec<char> = describe
        .get("vocabulary")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            format!(
                "{}: not a text-model checkpoint (no vocabulary)",
                args.checkpoint.display()
            )
        })?
        .chars()
        .collect();
    let cell: CellKind = describe
        .get("cell")
        .and_then(|v| v.as_str())
        .unwrap_or("lstm")
        .parse()?;
    let model = SequenceModel::new(
        cell,
        field("input_size")?,
        field("hidden")?,
        field("layers")?,
        field("output_size")?,
        &mut seeded_rng(0),
    );
    let directory = current_checkpoint_dir(&args.checkpoint).map_err(|e| e.to_string())?;
    load_module(&model, directory.join("model.safetensors")).map_err(|e| e.to_string())?;
    model.set_training(false);

    let classes = vocabulary.len();
    let encode = |c: char| {
        vocabulary.binary_search(&c).map_err(|_| {
            format!("--prime contains {c:?}, which the model's vocabulary does not have")
        })
    };
    let prime: Vec<usize> = args.prime.chars().map(encode).collect::<Result<_, _>>()?;
    if prime.is_empty() {
        return Err("--prime must not be empty".into());
    }
    let mut rng = seeded_rng(args.seed);
    let mut state: Option<Vec<Var<f32>>> = None;
    let mut text: String = args.prime.clone();
    no_grad(|| {
        let feed = |symbol: usize, state: &mut Option<Vec<Var<f32>>>| {
            let mut one_hot = vec![0.0f32; classes];
            one_hot[symbol] = 1.0;
            let input = Var::constant(Tensor::from_vec(one_hot, &[1, 1, classes]));
            let out = model
                .recurrent
                .forward(&input, state.as_deref(), None)
                .expect("shapes fit");
            *state = Some(out.final_states.clone());
            model
                .head
                .forward(&out.output.reshape(&[1, out.output.shape()[2]]))
                .expect("shapes fit")
        };
        let mut logits = None;
        for &symbol in &prime {
            logits = Some(feed(symbol, &mut state));
        }
        for _ in 0..args.length {
            let scores = logits
                .take()
                .expect("primed")
                .value()
                .mul_scalar(1.0 / args.temperature)
                .softmax(-1)
                .to_vec();
            let mut u: f32 = rng.random();
            let mut next = classes - 1;
            for (i, &p) in scores.iter().enumerate() {
                if u < p {
                    next = i;
                    break;
                }
                u -= p;
            }
            text.push(vocabulary[next]);
            logits = Some(feed(next, &mut state));
        }
    });
    println!("{text}");
    Ok(())
}
