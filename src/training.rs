//! Training a sequence model on a [`Task`]: the loop behind `tapeloop train` and `compare`.

use std::path::PathBuf;
use std::time::Instant;

use rnn::autograd::no_grad;
use rnn::nn::{
    CrossEntropyOptions, Linear, Reduction, cross_entropy, mse, named_children, set_training_all,
};
use rnn::optim::{Adam, AdamConfig, Optimizer, Rmsprop, RmspropConfig, Sgd, SgdConfig};
use rnn::train::{clip_grad_norm, current_checkpoint_dir, load_checkpoint, save_checkpoint};
use rnn::{Module, Parameter, RecurrentConfig, Tensor, TensorRng, Var, seeded_rng};
use serde_json::{Value, json};

use crate::model::{AnyRecurrent, CellKind};
use crate::tasks::{Batch, Targets, Task};

/// A recurrent layer and a linear read-out.
pub struct SequenceModel {
    /// The recurrent layer.
    pub recurrent: AnyRecurrent,
    /// Maps hidden states to predictions.
    pub head: Linear<f32>,
}

impl SequenceModel {
    /// A model for `task` with the given cell, width and depth.
    pub fn new(
        kind: CellKind,
        input: usize,
        hidden: usize,
        layers: usize,
        outputs: usize,
        rng: &mut TensorRng,
    ) -> Self {
        let config = RecurrentConfig::new(input, hidden).num_layers(layers);
        let recurrent = AnyRecurrent::new(kind, &config, rng);
        let head = Linear::new(hidden, outputs, true, rng);
        Self { recurrent, head }
    }

    /// Predictions for a batch: `[batch, outputs]` from the last step for regression, or
    /// `[time · batch, classes]` from every step for classification.
    pub fn predict(&self, batch: &Batch) -> Var<f32> {
        let inputs = Var::constant(batch.inputs.clone());
        let out = self
            .recurrent
            .forward(&inputs, None, None)
            .expect("the task's inputs fit the model");
        let (steps, size) = (out.output.shape()[0], out.output.shape()[1]);
        let features = match batch.targets {
            Targets::LastStepRegression(_) => out.output.select(0, steps - 1),
            Targets::EveryStepClasses { .. } => {
                out.output.reshape(&[steps * size, out.output.shape()[2]])
            }
        };
        self.head
            .forward(&features)
            .expect("hidden size fits the head")
    }

    /// The task's loss on a batch (MSE, or masked mean cross-entropy in nats).
    pub fn loss(&self, batch: &Batch) -> Var<f32> {
        let prediction = self.predict(batch);
        batch_loss(&prediction, batch)
    }
}

/// The loss of predictions on a batch.
pub fn batch_loss(prediction: &Var<f32>, batch: &Batch) -> Var<f32> {
    match &batch.targets {
        Targets::LastStepRegression(target) => {
            mse(prediction, &Var::constant(target.clone()), Reduction::Mean).expect("shapes fit")
        }
        Targets::EveryStepClasses { classes, mask } => {
            let mask = mask.as_ref().map(|m| Tensor::from_slice(m, &[m.len()]));
            let mut options = CrossEntropyOptions::default();
            if let Some(mask) = &mask {
                options = options.mask(mask);
            }
            cross_entropy(prediction, classes, options).expect("shapes fit")
        }
    }
}

impl Module<f32> for SequenceModel {
    fn named_parameters(&self) -> Vec<(String, Parameter<f32>)> {
        named_children(&[("rnn", &self.recurrent), ("head", &self.head)])
    }

    fn set_training(&self, training: bool) {
        set_training_all(&[&self.recurrent, &self.head], training);
    }

    fn is_training(&self) -> bool {
        self.recurrent.is_training()
    }
}

/// Which optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba 2015).
    Adam,
    /// RMSprop with decay 0.95, as char-rnn.
    Rmsprop,
    /// SGD with momentum 0.9.
    Sgd,
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "adam" => Ok(Self::Adam),
            "rmsprop" => Ok(Self::Rmsprop),
            "sgd" => Ok(Self::Sgd),
            other => Err(format!(
                "unknown optimizer `{other}` (expected adam, rmsprop or sgd)"
            )),
        }
    }
}

/// Builds the optimizer over `params`.
pub fn make_optimizer(
    kind: OptimizerKind,
    lr: f64,
    params: Vec<Parameter<f32>>,
) -> Box<dyn Optimizer<f32>> {
    let built: Result<Box<dyn Optimizer<f32>>, _> = match kind {
        OptimizerKind::Adam => Adam::new(params, AdamConfig::adam(lr)).map(|o| Box::new(o) as _),
        OptimizerKind::Rmsprop => {
            Rmsprop::new(params, RmspropConfig::new(lr).alpha(0.95)).map(|o| Box::new(o) as _)
        }
        OptimizerKind::Sgd => {
            Sgd::new(params, SgdConfig::new(lr).momentum(0.9)).map(|o| Box::new(o) as _)
        }
    };
    built.unwrap_or_else(|e| panic!("optimizer: {e}"))
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// Optimizer steps to run (in total, counting steps done before a resume).
    pub steps: u64,
    /// Sequences per step.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Clip the gradient's global norm to this (none when `None`).
    pub clip: Option<f64>,
    /// Evaluate on held-out data every this many steps.
    pub eval_every: u64,
    /// Seed of the training data.
    pub seed: u64,
    /// Save (and resume from) checkpoints here.
    pub checkpoint: Option<PathBuf>,
    /// Stop early once the task reports itself solved (Reber).
    pub stop_when_solved: bool,
    /// Extra JSON stored in checkpoints (the model's configuration, so `sample` can rebuild it).
    pub describe: Value,
}

/// Held-out performance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean loss over the held-out batches.
    pub loss: f64,
    /// Sequences predicted perfectly and how many there were, for tasks that judge that.
    pub solved: Option<(usize, usize)>,
}

/// One point of the loss curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// Optimizer steps done.
    pub step: u64,
    /// Training loss of that step's batch.
    pub train_loss: f64,
    /// Held-out evaluation, at evaluation steps.
    pub eval: Option<Evaluation>,
}

/// What a training run did.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// The loss curve.
    pub curve: Vec<CurvePoint>,
    /// The last evaluation.
    pub final_eval: Evaluation,
    /// Steps done in total.
    pub steps: u64,
    /// Wall-clock seconds of this run (excluding steps before a resume).
    pub seconds: f64,
    /// Training sequences per second.
    pub sequences_per_second: f64,
    /// Training sequences seen when the task was first solved, if it was.
    pub solved_after_sequences: Option<u64>,
}

/// Evaluates on the task's held-out batches.
pub fn evaluate(model: &SequenceModel, task: &dyn Task, batch: usize) -> Evaluation {
    model.set_training(false);
    let batches = task.eval_batches(batch);
    let (mut total, mut solved, mut count) = (0.0, None::<usize>, 0usize);
    for (index, b) in batches.iter().enumerate() {
        let (loss, perfect) = no_grad(|| {
            let prediction = model.predict(b);
            let loss = batch_loss(&prediction, b).item() as f64;
            (loss, task.count_solved(index, batch, prediction.value()))
        });
        total += loss;
        if let Some(p) = perfect {
            solved = Some(solved.unwrap_or(0) + p);
        }
        count += b.inputs.shape()[1];
    }
    model.set_training(true);
    Evaluation {
        loss: total / batches.len().max(1) as f64,
        solved: solved.map(|s| (s, count)),
    }
}

/// Trains `model` on `task`, calling `progress` after every step.
pub fn train(
    model: &SequenceModel,
    task: &mut dyn Task,
    settings: &TrainSettings,
    mut progress: impl FnMut(&CurvePoint),
) -> Result<TrainReport, String> {
    let mut optimizer = make_optimizer(settings.optimizer, settings.lr, model.parameters());
    let mut step = 0u64;
    let mut curve = Vec::new();
    if let Some(dir) = &settings.checkpoint
        && current_checkpoint_dir(dir).is_ok()
    {
        let info = load_checkpoint(dir, model, optimizer.as_mut()).map_err(|e| e.to_string())?;
        step = info.step;
        if let Some(saved) = info.extra.get("curve").and_then(Value::as_array) {
            curve = saved
                .iter()
                .filter_map(|p| {
                    Some(CurvePoint {
                        step: p.get(0)?.as_u64()?,
                        train_loss: p.get(1)?.as_f64()?,
                        eval: None,
                    })
                })
                .collect();
        }
    }
    let start = Instant::now();
    let first_step = step;
    let mut solved_after = None;
    let mut last_eval = None;
    while step < settings.steps {
        // Each step's data comes from its own seed, so a resumed run sees the same batches.
        let mut rng = seeded_rng(
            settings
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(step),
        );
        let batch = task.train_batch(settings.batch, &mut rng);
        let loss = model.loss(&batch);
        let train_loss = loss.item() as f64;
        if !train_loss.is_finite() {
            return Err(format!(
                "the training loss became {train_loss} at step {step}: lower --lr or set --clip"
            ));
        }
        loss.backward().map_err(|e| e.to_string())?;
        if let Some(max_norm) = settings.clip {
            clip_grad_norm(optimizer.parameters(), max_norm);
        }
        optimizer.step();
        optimizer.zero_grad();
        step += 1;
        let at_boundary = step.is_multiple_of(settings.eval_every.max(1)) || step == settings.steps;
        let eval = at_boundary.then(|| evaluate(model, task, settings.batch.max(64)));
        let point = CurvePoint {
            step,
            train_loss,
            eval,
        };
        curve.push(point);
        progress(&point);
        if let Some(e) = eval {
            last_eval = Some(e);
            if let Some((perfect, total)) = e.solved
                && perfect == total
                && solved_after.is_none()
            {
                solved_after = Some(step * settings.batch as u64);
                if settings.stop_when_solved {
                    break;
                }
            }
        }
        let save_now = settings.checkpoint.is_some() && at_boundary;
        if save_now && let Some(dir) = &settings.checkpoint {
            let mut extra = settings.describe.clone();
            extra["curve"] = json!(
                curve
                    .iter()
                    .map(|p| json!([p.step, p.train_loss]))
                    .collect::<Vec<_>>()
            );
            save_checkpoint(dir, model, optimizer.as_ref(), step, extra)
                .map_err(|e| e.to_string())?;
        }
    }
    let final_eval = last_eval.unwrap_or_else(|| evaluate(model, task, settings.batch.max(64)));
    let seconds = start.elapsed().as_secs_f64();
    Ok(TrainReport {
        curve,
        final_eval,
        steps: step,
        seconds,
        sequences_per_second: (step - first_step) as f64 * settings.batch as f64
            / seconds.max(1e-9),
        solved_after_sequences: solved_after,
    })
}
