//! The copy task (Arjovsky et al. 2016).

use rand::RngExt;
use rnn::{TensorRng, seeded_rng};

use super::{Batch, Targets, Task, one_hot_sequence};

const DATA_SYMBOLS: usize = 8;
const BLANK: usize = 8;
const DELIMITER: usize = 9;
const ALPHABET: usize = 10;
const COPIED: usize = 10;

/// Alphabet a0–a9: a0–a7 data, a8 blank, a9 delimiter. Input: 10 data symbols, T−1 blanks, the
/// delimiter, 10 blanks (length T+20). Target: T+10 blanks, then the 10 data symbols.
/// Cross-entropy over all T+20 steps; a memoryless model scores 10·ln 8/(T+20).
pub struct Copy {
    /// The lag T.
    pub lag: usize,
    eval_seed: u64,
}

impl Copy {
    /// The task at lag `lag` (at least 1).
    pub fn new(lag: usize, eval_seed: u64) -> Self {
        assert!(lag >= 1, "copy: the lag must be at least 1");
        Self { lag, eval_seed }
    }

    fn batch(&self, batch: usize, rng: &mut TensorRng) -> Batch {
        let steps = self.lag + 2 * COPIED;
        let mut inputs = vec![vec![BLANK; batch]; steps];
        let mut targets = vec![vec![BLANK; batch]; steps];
        for b in 0..batch {
            for i in 0..COPIED {
                let symbol = rng.random_range(0..DATA_SYMBOLS);
                inputs[i][b] = symbol;
                targets[self.lag + COPIED + i][b] = symbol;
            }
            inputs[COPIED + self.lag - 1][b] = DELIMITER;
        }
        Batch {
            inputs: one_hot_sequence(&inputs, ALPHABET),
            targets: Targets::EveryStepClasses {
                classes: targets.concat(),
                mask: None,
            },
        }
    }
}

impl Task for Copy {
    fn name(&self) -> &'static str {
        "copy"
    }

    fn input_size(&self) -> usize {
        ALPHABET
    }

    fn output_size(&self) -> usize {
        ALPHABET
    }

    fn train_batch(&mut self, batch: usize, rng: &mut TensorRng) -> Batch {
        self.batch(batch, rng)
    }

    fn eval_batches(&self, batch: usize) -> Vec<Batch> {
        let mut rng = seeded_rng(self.eval_seed);
        (0..4).map(|_| self.batch(batch, &mut rng)).collect()
    }

    fn baseline(&self) -> f64 {
        COPIED as f64 * (DATA_SYMBOLS as f64).ln() / (self.lag + 2 * COPIED) as f64
    }

    fn metric(&self) -> &'static str {
        "nats/step"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_arjovsky() {
        let task = Copy::new(5, 0);
        let batch = task.batch(1, &mut seeded_rng(0));
        let symbols: Vec<usize> = batch
            .inputs
            .argmax(-1, false)
            .to_vec()
            .iter()
            .map(|&x| x as usize)
            .collect();
        let Targets::EveryStepClasses { classes, .. } = batch.targets else {
            panic!()
        };
        assert_eq!(symbols.len(), 25);
        assert!(symbols[..10].iter().all(|&s| s < 8));
        assert!(symbols[10..14].iter().all(|&s| s == BLANK));
        assert_eq!(symbols[14], DELIMITER);
        assert!(symbols[15..].iter().all(|&s| s == BLANK));
        assert!(classes[..15].iter().all(|&s| s == BLANK));
        assert_eq!(&classes[15..], &symbols[..10]);
        assert!((Copy::new(100, 0).baseline() - 0.1733).abs() < 1e-3);
    }
}
