//! A character-level language model over any UTF-8 text.

use std::fmt;
use std::path::Path;

use rand::RngExt;
use rnn::{TensorRng, seeded_rng};

use super::{Batch, Targets, Task, one_hot_sequence};

/// A text that could not be used.
#[derive(Debug)]
pub struct TextError(pub String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TextError {}

/// Next-character prediction: the first 90% of the text trains, the last 10% validates.
/// Loss in nats per character (divide by ln 2 for bits per character).
pub struct CharText {
    /// The distinct characters, sorted; a character's index is its class.
    pub vocabulary: Vec<char>,
    encoded: Vec<usize>,
    split: usize,
    /// Characters per training sequence.
    pub seq_len: usize,
    eval_seed: u64,
}

impl CharText {
    /// Reads a UTF-8 file; the error names the path and what is wrong.
    pub fn from_file(path: &Path, seq_len: usize, eval_seed: u64) -> Result<Self, TextError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TextError(format!("cannot read text file {}: {e}", path.display())))?;
        Self::from_text(&text, seq_len, eval_seed)
            .map_err(|e| TextError(format!("{}: {}", path.display(), e.0)))
    }

    /// Uses `text` directly.
    pub fn from_text(text: &str, seq_len: usize, eval_seed: u64) -> Result<Self, TextError> {
        let mut vocabulary: Vec<char> = text.chars().collect();
        vocabulary.sort_unstable();
        vocabulary.dedup();
        let encoded: Vec<usize> = text
            .chars()
            .map(|c| vocabulary.binary_search(&c).expect("in the vocabulary"))
            .collect();
        let split = encoded.len() * 9 / 10;
        if seq_len == 0 || split < seq_len + 1 || encoded.len() - split < seq_len + 1 {
            return Err(TextError(format!(
                "the text has {} characters: too short for sequences of {} (need at least {})",
                encoded.len(),
                seq_len,
                10 * (seq_len + 1)
            )));
        }
        Ok(Self {
            vocabulary,
            encoded,
            split,
            seq_len,
            eval_seed,
        })
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.encoded.len()
    }

    /// True for an empty text (never, once constructed).
    pub fn is_empty(&self) -> bool {
        self.encoded.is_empty()
    }

    /// Character `i` as a class index.
    pub fn encode(&self, c: char) -> Option<usize> {
        self.vocabulary.binary_search(&c).ok()
    }

    fn batch_from(&self, starts: &[usize]) -> Batch {
        let steps = self.seq_len;
        let inputs: Vec<Vec<usize>> = (0..steps)
            .map(|t| starts.iter().map(|&s| self.encoded[s + t]).collect())
            .collect();
        let classes = (0..steps)
            .flat_map(|t| starts.iter().map(move |&s| self.encoded[s + t + 1]))
            .collect();
        Batch {
            inputs: one_hot_sequence(&inputs, self.vocabulary.len()),
            targets: Targets::EveryStepClasses {
                classes,
                mask: None,
            },
        }
    }
}

impl Task for CharText {
    fn name(&self) -> &'static str {
        "text"
    }

    fn input_size(&self) -> usize {
        self.vocabulary.len()
    }

    fn output_size(&self) -> usize {
        self.vocabulary.len()
    }

    fn train_batch(&mut self, batch: usize, rng: &mut TensorRng) -> Batch {
        let starts: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.split - self.seq_len - 1))
            .collect();
        self.batch_from(&starts)
    }

    fn eval_batches(&self, batch: usize) -> Vec<Batch> {
        // A fixed sample of validation windows (up to 8 batches), from their own seed.
        let mut rng = seeded_rng(self.eval_seed);
        let range = self.split..self.encoded.len() - self.seq_len - 1;
        (0..8)
            .map(|_| {
                let starts: Vec<usize> = (0..batch)
                    .map(|_| rng.random_range(range.clone()))
                    .collect();
                self.batch_from(&starts)
            })
            .collect()
    }

    fn baseline(&self) -> f64 {
        // Unigram entropy of the training text: what a model without context achieves.
        let mut counts = vec![0usize; self.vocabulary.len()];
        for &c in &self.encoded[..self.split] {
            counts[c] += 1;
        }
        let total = self.split as f64;
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total;
                -p * p.ln()
            })
            .sum()
    }

    fn metric(&self) -> &'static str {
        "nats/char"
    }

    fn vocabulary(&self) -> Option<&[char]> {
        Some(&self.vocabulary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_the_next_characters() {
        let text = "abcdefghij".repeat(20);
        let task = CharText::from_text(&text, 5, 0).unwrap();
        let batch = task.batch_from(&[0, 3]);
        let Targets::EveryStepClasses { classes, .. } = batch.targets else {
            panic!()
        };
        // Step 0: inputs a, d; targets b, e.
        assert_eq!(&classes[..2], &[1, 4]);
        assert_eq!(task.vocabulary.len(), 10);
        assert!((task.baseline() - 10f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn short_texts_and_missing_files_are_clear_errors() {
        let err = CharText::from_text("abc", 50, 0)
            .err()
            .expect("too short")
            .to_string();
        assert!(err.contains("too short"), "{err}");
        let err = CharText::from_file(Path::new("/no/such/file.txt"), 50, 0)
            .err()
            .expect("missing")
            .to_string();
        assert!(err.contains("/no/such/file.txt"), "{err}");
    }
}
