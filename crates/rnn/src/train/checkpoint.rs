//! Checkpoints: model, optimizer state and step counter, saved so a crash at any moment leaves
//! the previous checkpoint whole, and loaded only after everything has been checked.
//!
//! # Layout and crash safety
//!
//! ```text
//! DIR/latest                         "step-000000001200\n": the current checkpoint
//! DIR/step-000000001200/model.safetensors
//! DIR/step-000000001200/optimizer.safetensors
//! DIR/step-000000001200/checkpoint.json
//! ```
//!
//! A save writes the three files into a fresh staging directory (`DIR/.staging-…`), flushes
//! them, renames the directory to its final name, and only then replaces `DIR/latest` — itself
//! atomically (temporary file, then rename). Until that last rename, `latest` names the
//! previous checkpoint, whose files nothing touches; after it, the new one is complete. Older
//! checkpoint directories are removed last. Leftover staging directories of an interrupted save
//! are removed by the next save. One process saves into a directory at a time.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::io::{TensorFile, save_tensors, write_atomically};
use crate::module::Module;
use crate::optim::{Optimizer, OptimizerState};

/// The version of the checkpoint layout this build writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u64 = 1;

const FORMAT_NAME: &str = "tapeloop-checkpoint";
const LATEST: &str = "latest";
const MODEL_FILE: &str = "model.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const JSON_FILE: &str = "checkpoint.json";
const STAGING_PREFIX: &str = ".staging-";
const CHECKPOINT_PREFIX: &str = "step-";

/// What a loaded checkpoint said besides the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    /// The step counter saved with it: continue from here.
    pub step: u64,
    /// The learning rate at save time (already set on the optimizer by
    /// [`load_checkpoint`]).
    pub learning_rate: f64,
    /// The caller's own JSON given to [`save_checkpoint`] (e.g. data position, dropout draws).
    pub extra: Value,
    /// The directory the checkpoint was read from.
    pub directory: PathBuf,
}

fn file_error(path: &Path, message: impl Into<String>) -> RnnError {
    RnnError::File {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Flushes a directory's entries (the renames in it) to disk; best effort, as not every
/// platform can open a directory for syncing.
fn sync_directory(path: &Path) {
    if let Ok(dir) = fs::File::open(path) {
        let _ = dir.sync_all();
    }
}

/// A checkpoint written to its staging directory but not yet made current: what
/// [`save_checkpoint`] has done just before its renames. Dropping it without
/// [`commit`](StagedCheckpoint::commit) leaves things as a crash at that moment would: the
/// previous checkpoint stays current, and the next save removes the staging directory.
#[derive(Debug)]
pub struct StagedCheckpoint {
    root: PathBuf,
    staging: PathBuf,
    step: u64,
}

impl StagedCheckpoint {
    /// The staging directory holding the three files.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Renames the staging directory into place, points `latest` at it, and removes older
    /// checkpoints. Returns the new checkpoint's directory.
    pub fn commit(self) -> Result<PathBuf, RnnError> {
        let base = format!("{CHECKPOINT_PREFIX}{:012}", self.step);
        let mut name = base.clone();
        let mut suffix = 1;
        // Saving the same step twice must not replace the directory `latest` may name.
        while self.root.join(&name).exists() {
            name = format!("{base}-{suffix}");
            suffix += 1;
        }
        let target = self.root.join(&name);
        fs::rename(&self.staging, &target).map_err(|e| {
            file_error(
                &self.staging,
                format!("cannot rename into {}: {e}", target.display()),
            )
        })?;
        sync_directory(&self.root);
        write_atomically(&self.root.join(LATEST), format!("{name}\n").as_bytes())?;
        sync_directory(&self.root);
        // The new checkpoint is current: older ones can go. A failure here loses nothing.
        if let Ok(entries) = fs::read_dir(&self.root) {
            for entry in entries.flatten() {
                let entry_name = entry.file_name().to_string_lossy().into_owned();
                if entry_name.starts_with(CHECKPOINT_PREFIX) && entry_name != name {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(target)
    }
}

/// Saves `model`'s parameters, `optimizer`'s state and learning rate, the step counter and
/// the caller's `extra` JSON into `dir`, crash-safely (see the docs of the `train::checkpoint`
/// module); only the newest checkpoint is kept. Returns the directory of the new checkpoint.
///
/// ```
/// use serde_json::json;
/// use tapeloop_rnn::nn::Linear;
/// use tapeloop_rnn::optim::{Optimizer, Sgd, SgdConfig};
/// use tapeloop_rnn::train::{load_checkpoint, save_checkpoint};
/// use tapeloop_rnn::{Module, seeded_rng};
///
/// let dir = std::env::temp_dir().join(format!("tapeloop-ckpt-doc-{}", std::process::id()));
/// let model = Linear::<f32>::new(3, 2, true, &mut seeded_rng(0));
/// let mut sgd = Sgd::new(model.parameters(), SgdConfig::new(0.1).momentum(0.9)).unwrap();
/// save_checkpoint(&dir, &model, &sgd, 100, json!({"epoch": 4})).unwrap();
///
/// let restored = Linear::<f32>::new(3, 2, true, &mut seeded_rng(1));
/// let mut restored_sgd = Sgd::new(restored.parameters(), SgdConfig::new(0.5).momentum(0.9)).unwrap();
/// let info = load_checkpoint(&dir, &restored, &mut restored_sgd).unwrap();
/// assert_eq!((info.step, info.extra["epoch"].as_u64()), (100, Some(4)));
/// assert_eq!(restored_sgd.learning_rate(), 0.1);
/// assert_eq!(restored.weight.value(), model.weight.value());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save_checkpoint<T, M, O>(
    dir: impl AsRef<Path>,
    model: &M,
    optimizer: &O,
    step: u64,
    extra: Value,
) -> Result<PathBuf, RnnError>
where
    T: Element,
    M: Module<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
{
    stage_checkpoint(dir, model, optimizer, step, extra)?.commit()
}

/// The first half of [`save_checkpoint`]: writes and flushes the three files into a fresh
/// staging directory under `dir` without making them current.
pub fn stage_checkpoint<T, M, O>(
    dir: impl AsRef<Path>,
    model: &M,
    optimizer: &O,
    step: u64,
    extra: Value,
) -> Result<StagedCheckpoint, RnnError>
where
    T: Element,
    M: Module<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
{
    let root = dir.as_ref().to_path_buf();
    fs::create_dir_all(&root).map_err(|e| file_error(&root, format!("cannot create: {e}")))?;
    remove_stale_staging(&root);
    let staging = root.join(format!("{STAGING_PREFIX}{step}-{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .map_err(|e| file_error(&staging, format!("cannot clear: {e}")))?;
    }
    fs::create_dir(&staging).map_err(|e| file_error(&staging, format!("cannot create: {e}")))?;

    let parameters: Vec<(String, Tensor<T>)> = model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| (name, p.value()))
        .collect();
    save_tensors(staging.join(MODEL_FILE), &parameters, None)?;
    let state = optimizer.state();
    save_tensors(staging.join(OPTIMIZER_FILE), &state.tensors, None)?;
    let description = json!({
        "format": FORMAT_NAME,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "step": step,
        "dtype": T::DTYPE,
        "model": {
            "file": MODEL_FILE,
            "parameters": parameters.len(),
            "elements": parameters.iter().map(|(_, t)| t.len()).sum::<usize>(),
        },
        "optimizer": {
            "file": OPTIMIZER_FILE,
            "kind": optimizer.kind(),
            "learning_rate": optimizer.learning_rate(),
            "hyperparameters": optimizer.hyperparameters(),
            "parameter_steps": state.steps,
        },
        "extra": extra,
    });
    let text = serde_json::to_string_pretty(&description).expect("JSON values serialize");
    write_atomically(&staging.join(JSON_FILE), text.as_bytes())?;
    sync_directory(&staging);
    Ok(StagedCheckpoint {
        root,
        staging,
        step,
    })
}

/// Removes what interrupted saves left: staging directories and temporary `latest` files.
fn remove_stale_staging(root: &Path) {
    let latest_temporary = format!(".{LATEST}.tmp-");
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) {
                let _ = fs::remove_dir_all(entry.path());
            } else if name.starts_with(&latest_temporary) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// The directory of the current checkpoint: the one `DIR/latest` names, or `DIR` itself when
/// it holds a `checkpoint.json` (a checkpoint directory given directly).
pub fn current_checkpoint_dir(dir: impl AsRef<Path>) -> Result<PathBuf, RnnError> {
    let root = dir.as_ref();
    let latest = root.join(LATEST);
    if latest.exists() {
        let text = fs::read_to_string(&latest)
            .map_err(|e| file_error(&latest, format!("cannot read: {e}")))?;
        let name = text.trim();
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(file_error(
                &latest,
                format!("does not name a checkpoint directory: {text:?}"),
            ));
        }
        let target = root.join(name);
        if !target.is_dir() {
            return Err(file_error(
                &latest,
                format!(
                    "names `{name}`, but {} is not a directory",
                    target.display()
                ),
            ));
        }
        return Ok(target);
    }
    if root.join(JSON_FILE).exists() {
        return Ok(root.to_path_buf());
    }
    Err(file_error(
        root,
        format!("no checkpoint here (neither `{LATEST}` nor `{JSON_FILE}`)"),
    ))
}

/// Restores `model` and `optimizer` from the current checkpoint in `dir` (see
/// [`current_checkpoint_dir`]) and returns its step counter, learning rate and extra JSON.
///
/// Everything is checked before anything is assigned — the JSON (format, version, dtype,
/// optimizer kind and hyperparameters), every model tensor's presence, dtype and shape, and the
/// optimizer state — so on error the model and optimizer are untouched, and the error names the
/// file and every problem found in it.
pub fn load_checkpoint<T, M, O>(
    dir: impl AsRef<Path>,
    model: &M,
    optimizer: &mut O,
) -> Result<CheckpointInfo, RnnError>
where
    T: Element,
    M: Module<T> + ?Sized,
    O: Optimizer<T> + ?Sized,
{
    let directory = current_checkpoint_dir(dir)?;
    let json_path = directory.join(JSON_FILE);
    let description = read_description::<T, O>(&json_path, optimizer)?;

    let model_path = directory.join(MODEL_FILE);
    let model_file = TensorFile::open(&model_path)?;
    let values = check_model(model, &model_file)
        .map_err(|problems| file_error(&model_path, problems_message("the model", problems)))?;

    let optimizer_path = directory.join(OPTIMIZER_FILE);
    let optimizer_file = TensorFile::open(&optimizer_path)?;
    let mut tensors = Vec::new();
    let mut problems = Vec::new();
    for name in optimizer_file.names() {
        match optimizer_file.tensor::<T>(&name) {
            Ok(t) => tensors.push((name, t)),
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(file_error(
            &optimizer_path,
            problems_message("the optimizer", problems),
        ));
    }
    let state = OptimizerState {
        tensors,
        steps: description.parameter_steps,
    };
    optimizer.check_state(&state).map_err(|e| match e {
        RnnError::Config(message) => file_error(&optimizer_path, message),
        other => file_error(&optimizer_path, other.to_string()),
    })?;

    // Everything fits: assign.
    for ((_, param), value) in model.named_parameters().into_iter().zip(values) {
        param.set_value(value)?;
    }
    optimizer.load_state(state)?;
    optimizer.set_learning_rate(description.learning_rate);
    Ok(CheckpointInfo {
        step: description.step,
        learning_rate: description.learning_rate,
        extra: description.extra,
        directory,
    })
}

/// The step counter, learning rate and extra JSON of the current checkpoint in `dir`, without
/// loading any tensor (e.g. to decide whether to resume).
pub fn checkpoint_info(dir: impl AsRef<Path>) -> Result<CheckpointInfo, RnnError> {
    let directory = current_checkpoint_dir(dir)?;
    let path = directory.join(JSON_FILE);
    let json = read_json(&path)?;
    let field = |name: &str| json.get(name).cloned().unwrap_or(Value::Null);
    Ok(CheckpointInfo {
        step: field("step")
            .as_u64()
            .ok_or_else(|| file_error(&path, "`step` is missing or not an integer"))?,
        learning_rate: json
            .pointer("/optimizer/learning_rate")
            .and_then(Value::as_f64)
            .ok_or_else(|| file_error(&path, "`optimizer.learning_rate` is missing"))?,
        extra: field("extra"),
        directory,
    })
}

fn read_json(path: &Path) -> Result<Value, RnnError> {
    let text =
        fs::read_to_string(path).map_err(|e| file_error(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| file_error(path, format!("not valid JSON: {e}")))
}

/// The parts of `checkpoint.json` a load needs, checked against this build and `optimizer`.
struct Description {
    step: u64,
    learning_rate: f64,
    parameter_steps: Vec<u64>,
    extra: Value,
}

fn read_description<T: Element, O: Optimizer<T> + ?Sized>(
    path: &Path,
    optimizer: &O,
) -> Result<Description, RnnError> {
    let json = read_json(path)?;
    let mut problems = Vec::new();
    if json.get("format").and_then(Value::as_str) != Some(FORMAT_NAME) {
        problems.push(format!("`format` is not \"{FORMAT_NAME}\""));
    }
    match json.get("format_version").and_then(Value::as_u64) {
        Some(CHECKPOINT_FORMAT_VERSION) => {}
        Some(other) => problems.push(format!(
            "format version {other} is not supported (this build reads {CHECKPOINT_FORMAT_VERSION})"
        )),
        None => problems.push("`format_version` is missing".into()),
    }
    match json.get("dtype").and_then(Value::as_str) {
        Some(dtype) if dtype == T::DTYPE => {}
        other => problems.push(format!("`dtype` is {other:?}, the model is {}", T::DTYPE)),
    }
    let step = json.get("step").and_then(Value::as_u64);
    if step.is_none() {
        problems.push("`step` is missing or not an integer".into());
    }
    let saved = json.get("optimizer").cloned().unwrap_or(Value::Null);
    let kind = saved.get("kind").and_then(Value::as_str);
    if kind != Some(optimizer.kind()) {
        problems.push(format!(
            "the checkpoint is for optimizer {}, not `{}`",
            kind.map_or("(missing)".to_string(), |k| format!("`{k}`")),
            optimizer.kind()
        ));
    } else {
        compare_hyperparameters(
            saved.get("hyperparameters"),
            &optimizer.hyperparameters(),
            &mut problems,
        );
    }
    let learning_rate = saved.get("learning_rate").and_then(Value::as_f64);
    if learning_rate.is_none() {
        problems.push("`optimizer.learning_rate` is missing or not a number".into());
    }
    let parameter_steps: Option<Vec<u64>> = saved
        .get("parameter_steps")
        .and_then(Value::as_array)
        .and_then(|steps| steps.iter().map(Value::as_u64).collect());
    if parameter_steps.is_none() {
        problems.push("`optimizer.parameter_steps` is missing or not a list of integers".into());
    }
    match (step, learning_rate, parameter_steps) {
        (Some(step), Some(learning_rate), Some(parameter_steps)) if problems.is_empty() => {
            Ok(Description {
                step,
                learning_rate,
                parameter_steps,
                extra: json.get("extra").cloned().unwrap_or(Value::Null),
            })
        }
        _ => Err(file_error(
            path,
            format!("unusable checkpoint description: {}", problems.join("; ")),
        )),
    }
}

fn compare_hyperparameters(saved: Option<&Value>, current: &Value, problems: &mut Vec<String>) {
    let (Some(Value::Object(saved)), Value::Object(current)) = (saved, current) else {
        problems.push("`optimizer.hyperparameters` is missing".into());
        return;
    };
    for (name, value) in current {
        match saved.get(name) {
            Some(stored) if stored == value => {}
            Some(stored) => problems.push(format!(
                "optimizer hyperparameter `{name}` is {stored} in the checkpoint but {value} in the optimizer"
            )),
            None => problems.push(format!(
                "optimizer hyperparameter `{name}` is missing from the checkpoint"
            )),
        }
    }
    for name in saved.keys().filter(|name| !current.contains_key(*name)) {
        problems.push(format!(
            "the checkpoint has optimizer hyperparameter `{name}`, which this optimizer does not"
        ));
    }
}

/// Each parameter's stored value, in `named_parameters` order, or every problem found.
fn check_model<T: Element, M: Module<T> + ?Sized>(
    model: &M,
    file: &TensorFile,
) -> Result<Vec<Tensor<T>>, Vec<String>> {
    let params = model.named_parameters();
    let mut problems = Vec::new();
    let mut values = Vec::with_capacity(params.len());
    for (name, param) in &params {
        match file.tensor::<T>(name) {
            Ok(t) if t.shape() == param.shape() => values.push(t),
            Ok(t) => problems.push(format!(
                "`{name}` has shape {:?}, the model expects {:?}",
                t.shape(),
                param.shape()
            )),
            Err(e) => problems.push(e),
        }
    }
    let known: BTreeMap<&str, ()> = params.iter().map(|(n, _)| (n.as_str(), ())).collect();
    for name in file.names() {
        if !known.contains_key(name.as_str()) {
            problems.push(format!(
                "unexpected tensor `{name}` (the model has no such parameter)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(values)
    } else {
        Err(problems)
    }
}

fn problems_message(what: &str, problems: Vec<String>) -> String {
    format!(
        "does not match {what} ({} problem{}): {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("; ")
    )
}
