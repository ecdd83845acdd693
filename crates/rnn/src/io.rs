//! Weights in and out as safetensors, under PyTorch's parameter names.
//!
//! A file written by `safetensors.torch.save_file(model.state_dict(), path)` loads into the
//! equivalent tapeloop layer. Loading checks everything first — missing, unexpected and
//! mis-shaped tensors and wrong dtypes are reported together — and only then assigns, so a
//! failed load leaves the model untouched. Saving writes a temporary file and renames it, so a
//! crash mid-save never destroys the previous file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::module::Module;

fn dtype_of<T: Element>() -> Dtype {
    match T::DTYPE {
        "f32" => Dtype::F32,
        _ => Dtype::F64,
    }
}

/// Little-endian bytes of a tensor's elements in row-major order.
fn tensor_bytes<T: Element>(t: &Tensor<T>) -> Vec<u8> {
    let values = t.to_vec();
    match dtype_of::<T>() {
        Dtype::F32 => values
            .iter()
            .flat_map(|x| (x.to_f64_lossy() as f32).to_le_bytes())
            .collect(),
        _ => values
            .iter()
            .flat_map(|x| x.to_f64_lossy().to_le_bytes())
            .collect(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, flushed to disk, then renamed
/// over the target.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RnnError> {
    let file_error = |message: String| RnnError::File {
        path: path.display().to_string(),
        message,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| file_error("not a file path".into()))?
        .to_string_lossy()
        .into_owned();
    let temporary = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = fs::File::create(&temporary)
        .map_err(|e| file_error(format!("cannot create {}: {e}", temporary.display())))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| file_error(format!("cannot write {}: {e}", temporary.display())))?;
    drop(file);
    fs::rename(&temporary, path).map_err(|e| {
        file_error(format!(
            "cannot rename {} into place: {e}",
            temporary.display()
        ))
    })
}

/// Saves named tensors (and optional string metadata) as a safetensors file, atomically.
pub fn save_tensors<T: Element>(
    path: impl AsRef<Path>,
    tensors: &[(String, Tensor<T>)],
    metadata: Option<HashMap<String, String>>,
) -> Result<(), RnnError> {
    let path = path.as_ref();
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| (name.clone(), tensor_bytes(t), t.shape().to_vec()))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, data, shape)| {
            let view = TensorView::new(dtype_of::<T>(), shape.clone(), data)
                .expect("byte count matches the shape");
            (name.clone(), view)
        })
        .collect();
    let serialized = safetensors::serialize(views, metadata).map_err(|e| RnnError::File {
        path: path.display().to_string(),
        message: format!("cannot serialize: {e}"),
    })?;
    write_atomically(path, &serialized)
}

/// A safetensors file read into memory.
pub struct TensorFile {
    path: String,
    bytes: Vec<u8>,
}

impl TensorFile {
    /// Reads and validates a safetensors file; errors name the path and what is wrong.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, RnnError> {
        let path_str = path.as_ref().display().to_string();
        let bytes = fs::read(path.as_ref()).map_err(|e| RnnError::File {
            path: path_str.clone(),
            message: format!("cannot read: {e}"),
        })?;
        SafeTensors::deserialize(&bytes).map_err(|e| RnnError::File {
            path: path_str.clone(),
            message: format!("not a valid safetensors file: {e}"),
        })?;
        Ok(Self {
            path: path_str,
            bytes,
        })
    }

    fn parsed(&self) -> SafeTensors<'_> {
        SafeTensors::deserialize(&self.bytes).expect("validated when opened")
    }

    /// The path it was read from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `__metadata__` strings.
    pub fn metadata(&self) -> HashMap<String, String> {
        SafeTensors::read_metadata(&self.bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().clone())
            .unwrap_or_default()
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .parsed()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        names.sort();
        names
    }

    /// True when the file holds a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.parsed().tensor(name).is_ok()
    }

    /// The shape and dtype name of a tensor.
    pub fn info(&self, name: &str) -> Option<(Vec<usize>, String)> {
        let view = self.parsed().tensor(name).ok()?;
        Some((view.shape().to_vec(), format!("{:?}", view.dtype())))
    }

    /// A float tensor, which must be stored with exactly `T`'s dtype.
    pub fn tensor<T: Element>(&self, name: &str) -> Result<Tensor<T>, String> {
        let view = self
            .parsed()
            .tensor(name)
            .map_err(|_| format!("missing tensor `{name}`"))?;
        if view.dtype() != dtype_of::<T>() {
            return Err(format!(
                "`{name}` has dtype {:?}, expected {:?}",
                view.dtype(),
                dtype_of::<T>()
            ));
        }
        Ok(decode(&view))
    }

    /// An integer tensor (I64 or I32), e.g. PyTorch's `lengths`.
    pub fn integers(&self, name: &str) -> Result<Vec<i64>, String> {
        let view = self
            .parsed()
            .tensor(name)
            .map_err(|_| format!("missing tensor `{name}`"))?;
        match view.dtype() {
            Dtype::I64 => Ok(view
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
                .collect()),
            Dtype::I32 => Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64)
                .collect()),
            other => Err(format!(
                "`{name}` has dtype {other:?}, expected an integer type"
            )),
        }
    }
}

fn decode<T: Element>(view: &TensorView<'_>) -> Tensor<T> {
    let data: Vec<T> = match view.dtype() {
        Dtype::F32 => view
            .data()
            .chunks_exact(4)
            .map(|b| T::from_f64_lossy(f32::from_le_bytes(b.try_into().unwrap()) as f64))
            .collect(),
        _ => view
            .data()
            .chunks_exact(8)
            .map(|b| T::from_f64_lossy(f64::from_le_bytes(b.try_into().unwrap())))
            .collect(),
    };
    Tensor::from_vec(data, view.shape())
}

/// Saves every parameter of a module under its name.
pub fn save_module<T: Element>(
    module: &impl Module<T>,
    path: impl AsRef<Path>,
) -> Result<(), RnnError> {
    let tensors: Vec<(String, Tensor<T>)> = module
        .named_parameters()
        .into_iter()
        .map(|(name, p)| (name, p.value()))
        .collect();
    save_tensors(path, &tensors, None)
}

/// Loads every parameter of a module from a file. All problems are reported at once and nothing
/// is assigned unless everything matches.
///
/// ```
/// use tapeloop_rnn::{Gru, Module, RecurrentConfig, io, seeded_rng};
///
/// let dir = std::env::temp_dir().join(format!("tapeloop-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("gru.safetensors");
/// let config = RecurrentConfig::new(3, 4);
/// let a = Gru::<f64>::gru(&config, &mut seeded_rng(1));
/// let b = Gru::<f64>::gru(&config, &mut seeded_rng(2));
/// io::save_module(&a, &path).unwrap();
/// io::load_module(&b, &path).unwrap();
/// assert_eq!(a.named_parameters()[0].1.value(), b.named_parameters()[0].1.value());
///
/// let wider = Gru::<f64>::gru(&RecurrentConfig::new(3, 5), &mut seeded_rng(3));
/// let err = io::load_module(&wider, &path).unwrap_err().to_string();
/// assert!(err.contains("weight_hh_l0"), "{err}");
/// ```
pub fn load_module<T: Element>(
    module: &impl Module<T>,
    path: impl AsRef<Path>,
) -> Result<(), RnnError> {
    let file = TensorFile::open(path)?;
    load_from(module, &file, "", true)
}

/// Loads a module's parameters from `file`, reading `prefix + name` for each. With `strict`,
/// tensors under the prefix that the model does not have are errors too.
pub fn load_from<T: Element>(
    module: &impl Module<T>,
    file: &TensorFile,
    prefix: &str,
    strict: bool,
) -> Result<(), RnnError> {
    let params = module.named_parameters();
    let mut problems = Vec::new();
    let mut values: BTreeMap<String, Tensor<T>> = BTreeMap::new();
    for (name, param) in &params {
        let key = format!("{prefix}{name}");
        match file.tensor::<T>(&key) {
            Ok(t) if t.shape() == param.shape() => {
                values.insert(name.clone(), t);
            }
            Ok(t) => problems.push(format!(
                "`{key}` has shape {:?}, the model expects {:?}",
                t.shape(),
                param.shape()
            )),
            Err(e) => problems.push(e),
        }
    }
    let known: Vec<String> = params.iter().map(|(n, _)| format!("{prefix}{n}")).collect();
    for name in file.names() {
        if strict && name.starts_with(prefix) && !known.contains(&name) {
            problems.push(format!(
                "unexpected tensor `{name}` (the model has no such parameter)"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(RnnError::Weights(problems));
    }
    for (name, param) in params {
        param.set_value(values.remove(&name).expect("checked above"))?;
    }
    Ok(())
}
