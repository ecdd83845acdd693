//! Whole-model training behaviour: a small model overfits a tiny dataset, masked cross-entropy
//! ignores padding exactly, truncated BPTT carries detached state, and a seed fixes a run bit
//! for bit (dropout included).

mod common;

use common::{CharModel, batch, snapshot, train_step};
use tapeloop_rnn::nn::{CrossEntropyOptions, Reduction, cross_entropy};
use tapeloop_rnn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig};
use tapeloop_rnn::tensor::Indices;
use tapeloop_rnn::train::{TbpttOptions, truncated_bptt};
use tapeloop_rnn::{Lstm, Module, RecurrentConfig, Tensor, Var, seeded_rng};

#[test]
fn small_model_overfits_a_tiny_dataset() {
    // Distinct first letters, so every prefix determines the next character: loss can reach 0.
    let data = batch(&["hello world!", "jolly good fun", "yellow herald"].map(|t| &t[..12]));
    let model = CharModel::new(data.vocab, 32, 0.0, 7);
    let mut optimizer = Adam::new(model.parameters(), AdamConfig::adam(0.03)).unwrap();
    let first = train_step(&model, &mut optimizer, &data);
    let mut last = first;
    for _ in 0..250 {
        last = train_step(&model, &mut optimizer, &data);
    }
    assert!(first > 2.0, "starts near log(vocab): {first}");
    assert!(last < 0.02, "loss after 250 steps: {last}");

    model.set_training(false);
    let (logits, _) = model.forward(&data.inputs, None, None);
    let predicted = logits.value().argmax(1, false).to_vec();
    for (i, (&p, &t)) in predicted.iter().zip(&data.targets).enumerate() {
        assert_eq!(p as usize, t, "position {i} predicted wrong");
    }
}

#[test]
fn masked_cross_entropy_ignores_padded_positions_exactly() {
    // Three sequences of lengths 6, 4 and 2 padded to 6 steps; padded inputs hold garbage
    // tokens and padded targets an out-of-vocabulary id.
    let (steps, batch_size, vocab) = (6, 3, 5);
    let lengths = [6, 4, 2];
    let padded = |t: usize, b: usize| t >= lengths[b];
    let make_inputs = |garbage: usize| {
        let ids = (0..steps * batch_size)
            .map(|i| {
                let (t, b) = (i / batch_size, i % batch_size);
                if padded(t, b) {
                    garbage
                } else {
                    (t + 2 * b) % vocab
                }
            })
            .collect();
        Indices::new(ids, &[steps, batch_size])
    };
    let targets: Vec<usize> = (0..steps * batch_size)
        .map(|i| {
            let (t, b) = (i / batch_size, i % batch_size);
            if padded(t, b) {
                999
            } else {
                (t + b + 1) % vocab
            }
        })
        .collect();
    let mask = Tensor::<f64>::from_vec(
        (0..steps * batch_size)
            .map(|i| {
                if padded(i / batch_size, i % batch_size) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect(),
        &[steps * batch_size],
    );

    let model = CharModel::new(vocab, 8, 0.0, 3);
    let run = |inputs: &Indices, options: CrossEntropyOptions<'_, f64>| {
        model.zero_grad();
        let (logits, _) = model.forward(inputs, None, Some(&lengths));
        let loss = cross_entropy(&logits, &targets, options).unwrap();
        loss.backward().unwrap();
        (loss.item(), snapshot_grads(&model))
    };
    let masked = CrossEntropyOptions::default().mask(&mask);
    let (loss_a, grads_a) = run(&make_inputs(0), masked);
    let (loss_b, grads_b) = run(&make_inputs(4), masked);
    assert_eq!(
        loss_a.to_bits(),
        loss_b.to_bits(),
        "garbage changed the loss"
    );
    assert_eq!(grads_a, grads_b, "garbage changed a gradient");

    // The same number as the mean over the real positions alone.
    let (logits, _) = model.forward(&make_inputs(0), None, Some(&lengths));
    let log_probs = logits.value().log_softmax(1);
    let real: Vec<f64> = (0..steps * batch_size)
        .filter(|&i| mask.to_vec()[i] == 1.0)
        .map(|i| -log_probs.get(&[i, targets[i]]))
        .collect();
    let expected = real.iter().sum::<f64>() / real.len() as f64;
    assert!((loss_a - expected).abs() < 1e-14, "{loss_a} vs {expected}");

    // Garbage logits at padded rows of the loss itself reach nothing either.
    let mut scores = logits.value().to_vec();
    for (i, &m) in mask.to_vec().iter().enumerate() {
        if m == 0.0 {
            scores[i * vocab] = 1e300;
            scores[i * vocab + 1] = f64::NEG_INFINITY;
        }
    }
    let garbage = Var::leaf(Tensor::from_vec(scores, &[steps * batch_size, vocab]));
    let clean = Var::leaf(logits.value().clone());
    let loss_garbage = cross_entropy(&garbage, &targets, masked).unwrap();
    let loss_clean = cross_entropy(&clean, &targets, masked).unwrap();
    assert_eq!(loss_garbage.item().to_bits(), loss_clean.item().to_bits());
    loss_garbage.backward().unwrap();
    loss_clean.backward().unwrap();
    let (g_garbage, g_clean) = (
        garbage.grad().unwrap().to_vec(),
        clean.grad().unwrap().to_vec(),
    );
    for (i, &m) in mask.to_vec().iter().enumerate() {
        let row = i * vocab..(i + 1) * vocab;
        if m == 0.0 {
            assert!(
                g_clean[row].iter().all(|&g| g == 0.0),
                "row {i} got a gradient"
            );
        } else {
            assert_eq!(g_garbage[row.clone()], g_clean[row], "row {i}");
        }
    }

    // ignore_index over the padding id is the same loss as the mask, bit for bit.
    let (loss_ignore, grads_ignore) = run(
        &make_inputs(0),
        CrossEntropyOptions::default().ignore_index(999),
    );
    assert_eq!(loss_ignore.to_bits(), loss_a.to_bits());
    assert_eq!(grads_ignore, grads_a);

    // Sum reduction is the mean times the number of real positions.
    let (loss_sum, _) = run(&make_inputs(0), masked.reduction(Reduction::Sum));
    assert!((loss_sum - loss_a * 12.0).abs() < 1e-12);
}

fn snapshot_grads(model: &impl Module<f64>) -> Vec<(String, Vec<f64>)> {
    model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| (name, p.grad().map(|g| g.to_vec()).unwrap_or_default()))
        .collect()
}

#[test]
fn same_seed_gives_a_bit_identical_run_with_dropout() {
    let data = batch(&["abracadabra!", "cadabra abra"]);
    let train = |seed: u64| {
        let model = CharModel::new(data.vocab, 16, 0.3, seed);
        let mut optimizer = Adam::new(
            model.parameters(),
            AdamConfig::adamw(0.01).weight_decay(0.1),
        )
        .unwrap();
        let losses: Vec<f64> = (0..15)
            .map(|_| train_step(&model, &mut optimizer, &data))
            .collect();
        (snapshot(&model), losses, model.dropout.draws())
    };
    let (params_a, losses_a, draws_a) = train(11);
    let (params_b, losses_b, draws_b) = train(11);
    assert_eq!(draws_a, 15, "dropout was active");
    assert_eq!(draws_a, draws_b);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&losses_a), bits(&losses_b));
    for ((name, a), (_, b)) in params_a.iter().zip(&params_b) {
        assert_eq!(
            bits(a),
            bits(b),
            "{name} differs between runs of the same seed"
        );
    }
    let (params_c, _, _) = train(12);
    assert_ne!(params_a, params_c, "another seed should give another run");
}

#[test]
fn truncated_bptt_runs_chunks_and_carries_detached_state() {
    let mut rng = seeded_rng(5);
    let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(2, 4), 0, &mut rng);
    let inputs = Tensor::<f64>::randn(&[10, 3, 2], &mut rng);
    let initial = vec![Var::constant(Tensor::zeros(&[1, 3, 4])); 2];

    // With a zero learning rate the chunked run must end in the state of one full pass.
    let mut frozen = Sgd::new(lstm.parameters(), SgdConfig::new(0.0)).unwrap();
    let mut seen_states = Vec::new();
    let run = truncated_bptt(
        &inputs,
        initial.clone(),
        &TbpttOptions::new(4).clip_grad_norm(0.5),
        &mut frozen,
        |chunk, steps, state| {
            seen_states.push((steps.clone(), state.iter().any(Var::requires_grad)));
            let out = lstm.forward(chunk, Some(state), None)?;
            let loss = out.output.square().mean(&[], false);
            Ok((loss, out.final_states))
        },
    )
    .unwrap();
    let ranges: Vec<_> = run.chunks.iter().map(|c| c.steps.clone()).collect();
    assert_eq!(ranges, [0..4, 4..8, 8..10], "last chunk is shorter");
    assert!(
        seen_states.iter().all(|(_, requires_grad)| !requires_grad),
        "every chunk starts from a detached state"
    );
    assert!(run.chunks.iter().all(|c| c.grad_norm > 0.0 && c.loss > 0.0));
    let full = lstm
        .forward(&Var::constant(inputs.clone()), None, None)
        .unwrap();
    for (chunked, whole) in run.final_state.iter().zip(&full.final_states) {
        let diff = chunked
            .value()
            .sub(whole.value())
            .abs()
            .max(&[], false)
            .item();
        assert!(
            diff < 1e-12,
            "carried state differs from one pass by {diff}"
        );
        assert!(!chunked.requires_grad());
    }

    // Gradients stop at chunk boundaries: the second chunk's gradient equals that of the
    // chunk run alone from the (constant) state the first chunk left.
    let params = lstm.parameters();
    let first = lstm
        .forward(&Var::constant(inputs.narrow(0, 0, 4)), None, None)
        .unwrap();
    let carried: Vec<Var<f64>> = first.final_states.iter().map(Var::detach).collect();
    lstm.zero_grad();
    let alone = lstm
        .forward(&Var::constant(inputs.narrow(0, 4, 4)), Some(&carried), None)
        .unwrap();
    alone.output.square().mean(&[], false).backward().unwrap();
    let expected_norm = tapeloop_rnn::train::grad_norm(&params);
    assert!((run.chunks[1].grad_norm - expected_norm).abs() < 1e-12);

    // Errors are reported, not panicked.
    let err = truncated_bptt(
        &inputs,
        initial,
        &TbpttOptions::new(0),
        &mut frozen,
        |_, _, state| Ok((Var::constant(Tensor::scalar(0.0)), state.to_vec())),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("chunk_len"), "{err}");
}

#[test]
fn truncated_bptt_learns_with_an_optimizer() {
    let mut rng = seeded_rng(8);
    let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(1, 6), 0, &mut rng);
    let head = tapeloop_rnn::nn::Linear::new(6, 1, true, &mut rng);
    let mut params = lstm.parameters();
    params.extend(head.parameters());
    let mut optimizer = Adam::new(params, AdamConfig::adam(0.03)).unwrap();
    // Echo the input from two steps back: needs state carried across chunk boundaries.
    let signal: Vec<f64> = (0..42)
        .map(|t| ((t * 7919) % 13) as f64 / 13.0 - 0.5)
        .collect();
    let inputs = Tensor::from_vec(signal[2..].to_vec(), &[40, 1, 1]);
    let targets = Tensor::from_vec(signal[..40].to_vec(), &[40, 1, 1]);
    let mut mean_losses = Vec::new();
    for _ in 0..40 {
        let initial = vec![Var::constant(Tensor::zeros(&[1, 1, 6])); 2];
        let run = truncated_bptt(
            &inputs,
            initial,
            &TbpttOptions::new(8),
            &mut optimizer,
            |chunk, steps, state| {
                let out = lstm.forward(chunk, Some(state), None)?;
                let prediction = head.forward(&out.output)?;
                let target = Var::constant(targets.narrow(0, steps.start, steps.len()));
                let loss = tapeloop_rnn::nn::mse(&prediction, &target, Reduction::Mean)?;
                Ok((loss, out.final_states))
            },
        )
        .unwrap();
        mean_losses.push(run.losses().iter().sum::<f64>() / run.chunks.len() as f64);
    }
    assert!(
        mean_losses[39] < mean_losses[0] / 3.0,
        "loss went from {} to {}",
        mean_losses[0],
        mean_losses[39]
    );
    assert_eq!(optimizer.state().steps[0], 40 * 5);
}
