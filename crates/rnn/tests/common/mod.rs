//! A small character-level model and data shared by the training and checkpoint tests.

#![allow(dead_code)] // each test file uses part of this

use tapeloop_rnn::nn::{self, CrossEntropyOptions, Dropout, Embedding, Linear, cross_entropy};
use tapeloop_rnn::optim::Optimizer;
use tapeloop_rnn::tensor::Indices;
use tapeloop_rnn::{Lstm, Module, Parameter, RecurrentConfig, Var, seeded_rng};

/// Embedding → LSTM → dropout → linear decoder: next-character prediction.
pub struct CharModel {
    pub embedding: Embedding<f64>,
    pub lstm: Lstm<f64>,
    pub dropout: Dropout,
    pub decoder: Linear<f64>,
}

impl CharModel {
    pub fn new(vocab: usize, hidden: usize, dropout: f64, seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        Self {
            embedding: Embedding::new(vocab, 8, None, &mut rng),
            lstm: Lstm::lstm(&RecurrentConfig::new(8, hidden), 0, &mut rng),
            dropout: Dropout::new(dropout, &mut rng),
            decoder: Linear::new(hidden, vocab, true, &mut rng),
        }
    }

    /// Logits `[T·B, vocab]` for tokens `[T, B]`, and the final LSTM state.
    pub fn forward(
        &self,
        tokens: &Indices,
        state: Option<&[Var<f64>]>,
        lengths: Option<&[usize]>,
    ) -> (Var<f64>, Vec<Var<f64>>) {
        let (steps, batch) = (tokens.shape()[0], tokens.shape()[1]);
        let embedded = self.embedding.forward(tokens).unwrap();
        let out = self.lstm.forward(&embedded, state, lengths).unwrap();
        let hidden = self.dropout.forward(&out.output);
        let logits = self.decoder.forward(&hidden).unwrap();
        let vocab = self.decoder.out_features();
        (logits.reshape(&[steps * batch, vocab]), out.final_states)
    }
}

impl Module<f64> for CharModel {
    fn named_parameters(&self) -> Vec<(String, Parameter<f64>)> {
        nn::named_children(&[
            ("embedding", &self.embedding),
            ("lstm", &self.lstm),
            ("decoder", &self.decoder),
        ])
    }

    fn set_training(&self, training: bool) {
        nn::set_training_all(
            &[&self.embedding, &self.lstm, &self.dropout, &self.decoder],
            training,
        );
    }

    fn is_training(&self) -> bool {
        self.dropout.is_training()
    }
}

/// Equal-length strings as time-major inputs `[T, B]` and next-character targets (`T·B`,
/// row-major like the flattened logits), over the vocabulary of their characters.
pub struct Batch {
    pub inputs: Indices,
    pub targets: Vec<usize>,
    pub vocab: usize,
}

pub fn batch(texts: &[&str]) -> Batch {
    let mut alphabet: Vec<char> = texts.iter().flat_map(|t| t.chars()).collect();
    alphabet.sort();
    alphabet.dedup();
    let id = |c: char| alphabet.iter().position(|&a| a == c).unwrap();
    let steps = texts[0].chars().count() - 1;
    let chars: Vec<Vec<char>> = texts.iter().map(|t| t.chars().collect()).collect();
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    for t in 0..steps {
        for text in &chars {
            inputs.push(id(text[t]));
            targets.push(id(text[t + 1]));
        }
    }
    Batch {
        inputs: Indices::new(inputs, &[steps, texts.len()]),
        targets,
        vocab: alphabet.len(),
    }
}

/// One full-BPTT step on a batch; returns the loss.
pub fn train_step(model: &CharModel, optimizer: &mut dyn Optimizer<f64>, data: &Batch) -> f64 {
    optimizer.zero_grad();
    let (logits, _) = model.forward(&data.inputs, None, None);
    let loss = cross_entropy(&logits, &data.targets, CrossEntropyOptions::default()).unwrap();
    loss.backward().unwrap();
    optimizer.step();
    loss.item()
}

/// Every parameter's values, for bit-for-bit comparisons.
pub fn snapshot(model: &impl Module<f64>) -> Vec<(String, Vec<f64>)> {
    model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| (name, p.value().to_vec()))
        .collect()
}

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapeloop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
