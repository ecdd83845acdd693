//! The adding problem (Le, Jaitly & Hinton 2015; Arjovsky et al. 2016).

use rand::RngExt;
use rnn::{Tensor, TensorRng, seeded_rng};

use super::{Batch, Targets, Task};

/// Two channels of length T: values from U[0, 1], and a marker channel with exactly two 1s, one
/// uniformly in each half. The target is the sum of the two marked values, scored by mean
/// squared error. Predicting 1 (the mean target) scores 1/6 ≈ 0.167: a model beats that only
/// by remembering a value across up to T steps.
pub struct Adding {
    /// Sequence length T.
    pub seq_len: usize,
    eval_seed: u64,
}

impl Adding {
    /// The task at lag `seq_len` (at least 2); held-out data comes from `eval_seed`.
    pub fn new(seq_len: usize, eval_seed: u64) -> Self {
        assert!(seq_len >= 2, "adding: seq_len must be at least 2");
        Self { seq_len, eval_seed }
    }

    fn batch(&self, batch: usize, rng: &mut TensorRng) -> Batch {
        let steps = self.seq_len;
        let half = steps / 2;
        let mut data = vec![0.0f32; steps * batch * 2];
        let mut targets = Vec::with_capacity(batch);
        for b in 0..batch {
            let first = rng.random_range(0..half);
            let second = rng.random_range(half..steps);
            let mut sum = 0.0f32;
            for t in 0..steps {
                let value: f32 = rng.random();
                let at = (t * batch + b) * 2;
                data[at] = value;
                if t == first || t == second {
                    data[at + 1] = 1.0;
                    sum += value;
                }
            }
            targets.push(sum);
        }
        Batch {
            inputs: Tensor::from_vec(data, &[steps, batch, 2]),
            targets: Targets::LastStepRegression(Tensor::from_vec(targets, &[batch, 1])),
        }
    }
}

impl Task for Adding {
    fn name(&self) -> &'static str {
        "adding"
    }

    fn input_size(&self) -> usize {
        2
    }

    fn output_size(&self) -> usize {
        1
    }

    fn train_batch(&mut self, batch: usize, rng: &mut TensorRng) -> Batch {
        self.batch(batch, rng)
    }

    fn eval_batches(&self, batch: usize) -> Vec<Batch> {
        let mut rng = seeded_rng(self.eval_seed);
        (0..4).map(|_| self.batch(batch, &mut rng)).collect()
    }

    fn baseline(&self) -> f64 {
        1.0 / 6.0
    }

    fn metric(&self) -> &'static str {
        "MSE"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sequence_has_one_marker_in_each_half_and_the_right_target() {
        let task = Adding::new(10, 0);
        let batch = task.batch(8, &mut seeded_rng(3));
        let inputs = batch.inputs.to_vec();
        let Targets::LastStepRegression(targets) = batch.targets else {
            panic!()
        };
        for b in 0..8 {
            let marked: Vec<usize> = (0..10)
                .filter(|&t| inputs[(t * 8 + b) * 2 + 1] == 1.0)
                .collect();
            assert_eq!(marked.len(), 2);
            assert!(marked[0] < 5 && marked[1] >= 5);
            let sum: f32 = marked.iter().map(|&t| inputs[(t * 8 + b) * 2]).sum();
            assert_eq!(sum, targets.get(&[b, 0]));
        }
    }

    #[test]
    fn predicting_one_scores_about_a_sixth() {
        let task = Adding::new(50, 1);
        let batch = task.batch(20_000, &mut seeded_rng(4));
        let Targets::LastStepRegression(targets) = batch.targets else {
            panic!()
        };
        let mse = targets.add_scalar(-1.0).square().mean(&[], false).item();
        assert!((mse - 1.0 / 6.0).abs() < 0.01, "{mse}");
    }
}
