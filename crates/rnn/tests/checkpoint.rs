//! Checkpoints: a resumed run continues bit-identically, an interrupted save leaves the old
//! checkpoint loadable, and corrupt or mismatched checkpoints are clear errors that change
//! nothing.

mod common;

use std::fs;

use common::{Batch, CharModel, batch, snapshot, temp_dir, train_step};
use serde_json::json;
use tapeloop_rnn::optim::{
    Adam, AdamConfig, LrSchedule, Optimizer, Rmsprop, RmspropConfig, Sgd, SgdConfig,
};
use tapeloop_rnn::train::{
    checkpoint_info, current_checkpoint_dir, load_checkpoint, save_checkpoint, stage_checkpoint,
};
use tapeloop_rnn::{Module, RnnError};

const BASE_LR: f64 = 0.02;
const SCHEDULE: LrSchedule = LrSchedule::Cosine {
    t_max: 12,
    eta_min: 0.001,
};

fn data() -> Batch {
    batch(&["the cat sat", "on the mat!"])
}

fn new_run(seed: u64) -> (CharModel, Adam<f64>) {
    let model = CharModel::new(data().vocab, 12, 0.25, seed);
    let optimizer = Adam::new(model.parameters(), AdamConfig::adam(BASE_LR).amsgrad(true)).unwrap();
    (model, optimizer)
}

/// Steps `from..to` of a scheduled run with dropout active.
fn train(model: &CharModel, optimizer: &mut Adam<f64>, from: u64, to: u64) -> Vec<f64> {
    let data = data();
    (from..to)
        .map(|step| {
            SCHEDULE.apply(optimizer, BASE_LR, step);
            train_step(model, optimizer, &data)
        })
        .collect()
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn resume_continues_bit_identically() {
    let (model, mut optimizer) = new_run(21);
    let uninterrupted = train(&model, &mut optimizer, 0, 12);

    let dir = temp_dir("resume");
    let (first, mut first_optimizer) = new_run(21);
    let before = train(&first, &mut first_optimizer, 0, 6);
    let extra = json!({"dropout": [first.dropout.seed(), first.dropout.draws()]});
    save_checkpoint(&dir, &first, &first_optimizer, 6, extra).unwrap();
    drop((first, first_optimizer));

    // Another process, another seed: everything must come from the checkpoint.
    let (resumed, mut resumed_optimizer) = new_run(99);
    let info = load_checkpoint(&dir, &resumed, &mut resumed_optimizer).unwrap();
    assert_eq!(info.step, 6);
    assert_eq!(info.learning_rate, SCHEDULE.learning_rate(BASE_LR, 5));
    let dropout = &info.extra["dropout"];
    resumed.dropout.set_seed(dropout[0].as_u64().unwrap());
    resumed.dropout.set_draws(dropout[1].as_u64().unwrap());
    let after = train(&resumed, &mut resumed_optimizer, info.step, 12);

    let mut stitched = before;
    stitched.extend(after);
    assert_eq!(
        bits(&stitched),
        bits(&uninterrupted),
        "losses differ after resume"
    );
    for ((name, a), (_, b)) in snapshot(&model).iter().zip(&snapshot(&resumed)) {
        assert_eq!(bits(a), bits(b), "{name} differs after resume");
    }
    assert_eq!(optimizer.state(), resumed_optimizer.state());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn interrupted_saves_leave_the_previous_checkpoint_loadable() {
    let dir = temp_dir("interrupted");
    let (model, mut optimizer) = new_run(5);
    train(&model, &mut optimizer, 0, 2);
    save_checkpoint(&dir, &model, &optimizer, 2, json!(null)).unwrap();
    let saved = snapshot(&model);
    let saved_state = optimizer.state();
    train(&model, &mut optimizer, 2, 4);

    // A crash after the files were written, before any rename.
    let staged = stage_checkpoint(&dir, &model, &optimizer, 4, json!(null)).unwrap();
    let staging = staged.path().to_path_buf();
    assert!(staging.join("model.safetensors").exists());
    drop(staged);
    // A crash in the middle of writing a file of the next save.
    let partial = stage_checkpoint(&dir, &model, &optimizer, 5, json!(null)).unwrap();
    let model_file = partial.path().join("model.safetensors");
    let bytes = fs::read(&model_file).unwrap();
    fs::write(&model_file, &bytes[..bytes.len() / 2]).unwrap();
    // A crash after the directory rename, before `latest` was replaced.
    let renamed = stage_checkpoint(&dir, &model, &optimizer, 6, json!(null)).unwrap();
    fs::rename(renamed.path(), dir.join("step-000000000006")).unwrap();

    let (restored, mut restored_optimizer) = new_run(6);
    let info = load_checkpoint(&dir, &restored, &mut restored_optimizer).unwrap();
    assert_eq!(info.step, 2);
    assert_eq!(snapshot(&restored), saved);
    assert_eq!(restored_optimizer.state(), saved_state);

    // The next complete save takes over and cleans up the leftovers.
    save_checkpoint(&dir, &model, &optimizer, 7, json!(null)).unwrap();
    assert_eq!(checkpoint_info(&dir).unwrap().step, 7);
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["latest", "step-000000000007"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn saving_the_same_step_twice_keeps_a_valid_checkpoint() {
    let dir = temp_dir("same-step");
    let (model, mut optimizer) = new_run(1);
    save_checkpoint(&dir, &model, &optimizer, 3, json!(null)).unwrap();
    train(&model, &mut optimizer, 3, 4);
    let second = save_checkpoint(&dir, &model, &optimizer, 3, json!({"again": true})).unwrap();
    assert_eq!(current_checkpoint_dir(&dir).unwrap(), second);
    let (restored, mut restored_optimizer) = new_run(2);
    let info = load_checkpoint(&dir, &restored, &mut restored_optimizer).unwrap();
    assert_eq!(info.extra, json!({"again": true}));
    assert_eq!(snapshot(&restored), snapshot(&model));
    fs::remove_dir_all(&dir).unwrap();
}

/// Builds an optimizer over a model's parameters.
type MakeOptimizer = fn(&CharModel) -> Box<dyn Optimizer<f64>>;

#[test]
fn every_optimizer_round_trips_through_a_checkpoint() {
    let data = data();
    let optimizers: Vec<(&str, MakeOptimizer)> = vec![
        ("plain sgd", |m| {
            Box::new(Sgd::new(m.parameters(), SgdConfig::new(0.1)).unwrap())
        }),
        ("nesterov", |m| {
            let config = SgdConfig::new(0.1).momentum(0.9).nesterov(true);
            Box::new(Sgd::new(m.parameters(), config).unwrap())
        }),
        ("adamw", |m| {
            Box::new(Adam::new(m.parameters(), AdamConfig::adamw(0.01)).unwrap())
        }),
        ("rmsprop", |m| {
            let config = RmspropConfig::new(0.01).momentum(0.5).centered(true);
            Box::new(Rmsprop::new(m.parameters(), config).unwrap())
        }),
    ];
    for (name, make) in optimizers {
        let dir = temp_dir(&format!("round-trip-{}", name.replace(' ', "-")));
        let model = CharModel::new(data.vocab, 6, 0.0, 8);
        let mut optimizer = make(&model);
        for _ in 0..3 {
            train_step(&model, optimizer.as_mut(), &data);
        }
        optimizer.set_learning_rate(1.0 / 3.0);
        save_checkpoint(&dir, &model, optimizer.as_ref(), 3, json!(null)).unwrap();
        let restored = CharModel::new(data.vocab, 6, 0.0, 9);
        let mut restored_optimizer = make(&restored);
        load_checkpoint(&dir, &restored, restored_optimizer.as_mut()).unwrap();
        assert_eq!(snapshot(&restored), snapshot(&model), "{name}");
        assert_eq!(restored_optimizer.state(), optimizer.state(), "{name}");
        assert_eq!(
            restored_optimizer.learning_rate().to_bits(),
            (1.0f64 / 3.0).to_bits()
        );
        // Both continue identically.
        let a = train_step(&model, optimizer.as_mut(), &data);
        let b = train_step(&restored, restored_optimizer.as_mut(), &data);
        assert_eq!(a.to_bits(), b.to_bits(), "{name}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Loads into a fresh run and returns the error text, asserting nothing was assigned.
fn load_error(
    dir: &std::path::Path,
    model: &CharModel,
    optimizer: &mut dyn Optimizer<f64>,
) -> String {
    let before = snapshot(model);
    let state_before = optimizer.state();
    let lr_before = optimizer.learning_rate();
    let err: RnnError = load_checkpoint(dir, model, optimizer).unwrap_err();
    assert_eq!(snapshot(model), before, "a failed load changed the model");
    assert_eq!(
        optimizer.state(),
        state_before,
        "a failed load changed the optimizer"
    );
    assert_eq!(optimizer.learning_rate(), lr_before);
    err.to_string()
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_clear_errors() {
    let dir = temp_dir("corrupt");
    let (model, mut optimizer) = new_run(3);
    train(&model, &mut optimizer, 0, 2);
    let checkpoint = save_checkpoint(&dir, &model, &optimizer, 2, json!(null)).unwrap();
    let (fresh, mut fresh_optimizer) = new_run(4);

    // Another optimizer kind.
    let mut sgd = Sgd::new(fresh.parameters(), SgdConfig::new(0.1)).unwrap();
    let err = load_error(&dir, &fresh, &mut sgd);
    assert!(
        err.contains("checkpoint.json") && err.contains("`adam`, not `sgd`"),
        "{err}"
    );
    // Other hyperparameters.
    let mut other = Adam::new(
        fresh.parameters(),
        AdamConfig::adam(BASE_LR).betas(0.8, 0.999),
    )
    .unwrap();
    let err = load_error(&dir, &fresh, &mut other);
    assert!(
        err.contains("`betas` is [0.9,0.999] in the checkpoint but [0.8,0.999]"),
        "{err}"
    );
    // Another model shape: every mis-shaped tensor named, with both shapes.
    let wider = CharModel::new(data().vocab, 13, 0.25, 4);
    let mut wider_optimizer = Rmsprop::new(wider.parameters(), RmspropConfig::new(0.01)).unwrap();
    let err = load_error(&dir, &wider, &mut wider_optimizer);
    assert!(err.contains("`rmsprop`"), "kind is checked first: {err}");
    let mut wider_adam =
        Adam::new(wider.parameters(), AdamConfig::adam(BASE_LR).amsgrad(true)).unwrap();
    let err = load_error(&dir, &wider, &mut wider_adam);
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        err.contains("`lstm.weight_hh_l0` has shape [48, 12], the model expects [52, 13]"),
        "{err}"
    );
    assert!(err.contains("`decoder.weight`"), "{err}");

    // Corrupt JSON.
    let json_path = checkpoint.join("checkpoint.json");
    let good_json = fs::read(&json_path).unwrap();
    fs::write(&json_path, &good_json[..good_json.len() / 2]).unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(
        err.contains("checkpoint.json") && err.contains("not valid JSON"),
        "{err}"
    );
    // A future format version.
    let text = String::from_utf8(good_json.clone()).unwrap();
    fs::write(
        &json_path,
        text.replace("\"format_version\": 1", "\"format_version\": 9"),
    )
    .unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(err.contains("format version 9 is not supported"), "{err}");
    fs::write(&json_path, &good_json).unwrap();

    // A truncated model file.
    let model_path = checkpoint.join("model.safetensors");
    let good_model = fs::read(&model_path).unwrap();
    fs::write(&model_path, &good_model[..good_model.len() - 10]).unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors"),
        "{err}"
    );
    fs::write(&model_path, &good_model).unwrap();

    // Optimizer state that does not fit: one buffer missing.
    let optimizer_path = checkpoint.join("optimizer.safetensors");
    let good_optimizer = fs::read(&optimizer_path).unwrap();
    let mut state = optimizer.state();
    state.tensors.retain(|(name, _)| name != "2.exp_avg_sq");
    tapeloop_rnn::io::save_tensors(&optimizer_path, &state.tensors, None).unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(
        err.contains("optimizer.safetensors") && err.contains("missing tensor `2.exp_avg_sq`"),
        "{err}"
    );
    fs::write(&optimizer_path, &good_optimizer).unwrap();

    // A missing file, and `latest` naming nothing.
    fs::remove_file(&model_path).unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(
        err.contains("model.safetensors") && err.contains("cannot read"),
        "{err}"
    );
    fs::write(dir.join("latest"), "step-000000000999\n").unwrap();
    let err = load_error(&dir, &fresh, &mut fresh_optimizer);
    assert!(
        err.contains("latest") && err.contains("step-000000000999"),
        "{err}"
    );
    let err = load_error(&dir.join("nothing-here"), &fresh, &mut fresh_optimizer);
    assert!(err.contains("no checkpoint here"), "{err}");

    // After all that, a good checkpoint still loads.
    fs::write(&model_path, &good_model).unwrap();
    fs::write(dir.join("latest"), "step-000000000002\n").unwrap();
    load_checkpoint(&dir, &fresh, &mut fresh_optimizer).unwrap();
    assert_eq!(snapshot(&fresh), snapshot(&model));
    fs::remove_dir_all(&dir).unwrap();
}
