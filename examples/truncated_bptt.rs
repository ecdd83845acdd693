//! Truncated backprop through time over a long sequence: a 20,000-step signal processed in
//! chunks of 50 steps, one optimizer step per chunk, the state carried across chunks with
//! `detach` so each backward pass covers only its chunk and memory stays flat.
//!
//! Run with `cargo run --release --example truncated_bptt`.

use tapeloop::autograd::live_nodes;
use tapeloop::rnn::nn::{Linear, Reduction, mse};
use tapeloop::rnn::optim::{Adam, AdamConfig};
use tapeloop::rnn::train::{TbpttOptions, truncated_bptt};
use tapeloop::rnn::{Lstm, Module, RecurrentConfig, Tensor, Var, seeded_rng};

fn main() {
    let (length, chunk, hidden) = (20_000, 50, 32);
    // Predict the next value of a sum of two sines with incommensurate periods: the model must
    // track both phases, carried in its state from chunk to chunk.
    let signal: Vec<f32> = (0..=length)
        .map(|t| {
            let t = t as f32;
            0.6 * (0.07 * t).sin() + 0.4 * (0.23 * t).sin()
        })
        .collect();
    let inputs = Tensor::from_vec(signal[..length].to_vec(), &[length, 1, 1]);
    let targets = Tensor::from_vec(signal[1..].to_vec(), &[length, 1, 1]);

    let mut rng = seeded_rng(0);
    let lstm = Lstm::<f32>::lstm(&RecurrentConfig::new(1, hidden), 0, &mut rng);
    let head = Linear::<f32>::new(hidden, 1, true, &mut rng);
    let mut params = lstm.parameters();
    params.extend(head.parameters());
    let mut optimizer = Adam::new(params, AdamConfig::adam(5e-3)).unwrap();

    let baseline = targets.square().mean(&[], false).item();
    let initial = vec![Var::constant(Tensor::zeros(&[1, 1, hidden])); 2];
    let nodes_before = live_nodes();
    let mut most_nodes = 0;
    let run = truncated_bptt(
        &inputs,
        initial,
        &TbpttOptions::new(chunk).clip_grad_norm(1.0),
        &mut optimizer,
        |x, steps, state| {
            let out = lstm.forward(x, Some(state), None)?;
            let prediction = head.forward(&out.output)?;
            let target = Var::constant(targets.narrow(0, steps.start, steps.len()));
            most_nodes = most_nodes.max(live_nodes());
            Ok((
                mse(&prediction, &target, Reduction::Mean)?,
                out.final_states,
            ))
        },
    )
    .unwrap();
    let losses = run.losses();
    for (i, window) in losses.chunks(losses.len() / 8).enumerate() {
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        println!(
            "chunks {:>4}–{:>4}: mean MSE {mean:.5}",
            i * window.len(),
            (i + 1) * window.len() - 1
        );
    }
    println!(
        "{} chunks of {chunk} steps; predicting 0 scores {baseline:.4}; the graph never held more than {} nodes (live before: {nodes_before}, after: {})",
        losses.len(),
        most_nodes,
        live_nodes()
    );
    let late = losses[losses.len() - 40..].iter().sum::<f64>() / 40.0;
    assert!(
        late < 0.05 * baseline as f64,
        "TBPTT should learn the signal: {late} vs {baseline}"
    );
}
