//! The embedded Reber grammar (Hochreiter & Schmidhuber 1997, experiment 1).

use rand::RngExt;
use rnn::{Tensor, TensorRng, seeded_rng};

use super::{Batch, Targets, Task, one_hot_sequence};

/// The seven symbols, in the order of their one-hot positions.
pub const SYMBOLS: [char; 7] = ['B', 'T', 'P', 'S', 'X', 'V', 'E'];
const B: usize = 0;
const T: usize = 1;
const P: usize = 2;
const S: usize = 3;
const X: usize = 4;
const V: usize = 5;
const E: usize = 6;

/// The Reber graph: from each state, the two (symbol, next state) branches, each taken with
/// probability ½. State 5 emits E.
const GRAPH: [[(usize, usize); 2]; 5] = [
    [(T, 1), (P, 2)],
    [(S, 1), (X, 3)],
    [(T, 2), (V, 4)],
    [(X, 2), (S, 5)],
    [(P, 3), (V, 5)],
];

/// One string with, for each position but the last, the set of symbols that may legally follow.
#[derive(Clone, Debug, PartialEq)]
pub struct ReberString {
    /// The symbols (indices into `SYMBOLS`).
    pub symbols: Vec<usize>,
    /// `legal[t]` lists the symbols that may follow `symbols[t]`.
    pub legal: Vec<Vec<usize>>,
}

impl ReberString {
    /// The string as letters, e.g. `BTBPVVETE`.
    pub fn text(&self) -> String {
        self.symbols.iter().map(|&s| SYMBOLS[s]).collect()
    }
}

/// Draws an embedded Reber string: B, T or P, a Reber string (B … E), the same letter, E.
pub fn embedded_reber(rng: &mut TensorRng) -> ReberString {
    let outer = if rng.random_bool(0.5) { T } else { P };
    let mut symbols = vec![B, outer, B];
    let mut legal = vec![vec![T, P], vec![B], vec![T, P]];
    let mut state = 0;
    while state != 5 {
        let (symbol, next) = GRAPH[state][rng.random_range(0..2)];
        symbols.push(symbol);
        state = next;
        legal.push(if state == 5 {
            vec![E]
        } else {
            GRAPH[state].iter().map(|b| b.0).collect()
        });
    }
    // Inner E, then the remembered letter, then the final E.
    symbols.extend([E, outer, E]);
    legal.extend([vec![outer], vec![E]]);
    ReberString { symbols, legal }
}

/// Next-symbol prediction on embedded Reber strings. Solved when, on every held-out string,
/// every legal next symbol is ranked above every illegal one at every position — which at the
/// second-to-last symbol means remembering the second symbol across the whole inner string.
pub struct EmbeddedReber {
    training: Vec<ReberString>,
    held_out: Vec<ReberString>,
}

impl EmbeddedReber {
    /// 256 training and 256 held-out strings, as in the paper.
    pub fn new(seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let training = (0..256).map(|_| embedded_reber(&mut rng)).collect();
        let held_out = (0..256).map(|_| embedded_reber(&mut rng)).collect();
        Self { training, held_out }
    }

    /// The held-out strings, in the order `eval_batches` uses.
    pub fn held_out(&self) -> &[ReberString] {
        &self.held_out
    }

    /// Pads strings into a batch: inputs are symbols 0..n−1, targets symbols 1..n, masked past
    /// each string's end.
    pub fn batch_of(strings: &[&ReberString]) -> Batch {
        let steps = strings
            .iter()
            .map(|s| s.symbols.len() - 1)
            .max()
            .unwrap_or(0);
        let batch = strings.len();
        let mut inputs = vec![vec![E; batch]; steps];
        let mut classes = vec![E; steps * batch];
        let mut mask = vec![0.0f32; steps * batch];
        for (b, s) in strings.iter().enumerate() {
            for t in 0..s.symbols.len() - 1 {
                inputs[t][b] = s.symbols[t];
                classes[t * batch + b] = s.symbols[t + 1];
                mask[t * batch + b] = 1.0;
            }
        }
        Batch {
            inputs: one_hot_sequence(&inputs, SYMBOLS.len()),
            targets: Targets::EveryStepClasses {
                classes,
                mask: Some(mask),
            },
        }
    }

    /// How many of `strings` are predicted perfectly by `logits` (`[time · batch, 7]`,
    /// time-major, as for [`EmbeddedReber::batch_of`] of the same strings).
    pub fn perfectly_predicted(strings: &[&ReberString], logits: &Tensor<f32>) -> usize {
        let batch = strings.len();
        let scores = logits.to_vec();
        strings
            .iter()
            .enumerate()
            .filter(|(b, s)| {
                s.legal.iter().enumerate().all(|(t, legal)| {
                    let row = &scores[(t * batch + b) * 7..(t * batch + b + 1) * 7];
                    let worst_legal = legal.iter().map(|&l| row[l]).fold(f32::INFINITY, f32::min);
                    (0..7)
                        .filter(|i| !legal.contains(i))
                        .all(|i| row[i] < worst_legal)
                })
            })
            .count()
    }
}

impl Task for EmbeddedReber {
    fn name(&self) -> &'static str {
        "reber"
    }

    fn input_size(&self) -> usize {
        SYMBOLS.len()
    }

    fn output_size(&self) -> usize {
        SYMBOLS.len()
    }

    fn train_batch(&mut self, batch: usize, rng: &mut TensorRng) -> Batch {
        let picked: Vec<&ReberString> = (0..batch)
            .map(|_| &self.training[rng.random_range(0..self.training.len())])
            .collect();
        Self::batch_of(&picked)
    }

    fn eval_batches(&self, batch: usize) -> Vec<Batch> {
        self.held_out
            .chunks(batch.max(1))
            .map(|chunk| Self::batch_of(&chunk.iter().collect::<Vec<_>>()))
            .collect()
    }

    fn baseline(&self) -> f64 {
        // A model that knows the grammar but not the remembered letter: at each position it
        // spreads probability over the legal successors. Averaged over the held-out set.
        let (mut total, mut count) = (0.0, 0usize);
        for s in &self.held_out {
            for (t, legal) in s.legal.iter().enumerate() {
                let choices = if t + 2 == s.symbols.len() - 1 {
                    2.0
                } else {
                    legal.len() as f64
                };
                total += choices.ln();
                count += 1;
            }
        }
        total / count as f64
    }

    fn metric(&self) -> &'static str {
        "nats/symbol"
    }

    fn count_solved(&self, index: usize, batch: usize, predictions: &Tensor<f32>) -> Option<usize> {
        let chunk = self.held_out.chunks(batch.max(1)).nth(index)?;
        Some(Self::perfectly_predicted(
            &chunk.iter().collect::<Vec<_>>(),
            predictions,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a string against the grammar by walking the graph.
    fn is_embedded_reber(symbols: &[usize]) -> bool {
        let n = symbols.len();
        if n < 9 || symbols[0] != B || symbols[2] != B || symbols[n - 1] != E || symbols[n - 3] != E
        {
            return false;
        }
        if symbols[1] != symbols[n - 2] || !(symbols[1] == T || symbols[1] == P) {
            return false;
        }
        let mut state = 0;
        for &s in &symbols[3..n - 3] {
            match GRAPH
                .get(state)
                .and_then(|b| b.iter().find(|(sym, _)| *sym == s))
            {
                Some(&(_, next)) => state = next,
                None => return false,
            }
        }
        state == 5
    }

    #[test]
    fn generated_strings_follow_the_grammar() {
        let mut rng = seeded_rng(0);
        for _ in 0..500 {
            let s = embedded_reber(&mut rng);
            assert!(is_embedded_reber(&s.symbols), "{}", s.text());
            assert_eq!(s.legal.len(), s.symbols.len() - 1);
            for (t, legal) in s.legal.iter().enumerate() {
                assert!(legal.contains(&s.symbols[t + 1]), "{} at {t}", s.text());
            }
        }
        assert!(is_embedded_reber(&[B, T, B, P, V, V, E, T, E])); // BTBPVVETE
    }

    #[test]
    fn perfect_scores_are_recognised_and_a_wrong_memory_is_not() {
        let task = EmbeddedReber::new(1);
        let strings: Vec<&ReberString> = task.held_out().iter().take(3).collect();
        let batch = EmbeddedReber::batch_of(&strings);
        let steps = batch.inputs.shape()[0];
        let mut logits = vec![-1.0f32; steps * 3 * 7];
        for (b, s) in strings.iter().enumerate() {
            for (t, legal) in s.legal.iter().enumerate() {
                for &l in legal {
                    logits[(t * 3 + b) * 7 + l] = 1.0;
                }
            }
        }
        let good = Tensor::from_vec(logits.clone(), &[steps * 3, 7]);
        assert_eq!(EmbeddedReber::perfectly_predicted(&strings, &good), 3);
        // Forget the remembered letter of string 0: rank the other one equally high.
        let s = strings[0];
        let t = s.symbols.len() - 3;
        let other = if s.symbols[1] == T { P } else { T };
        logits[t * 3 * 7 + other] = 1.0;
        let bad = Tensor::from_vec(logits, &[steps * 3, 7]);
        assert_eq!(EmbeddedReber::perfectly_predicted(&strings, &bad), 2);
    }
}
