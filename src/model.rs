//! A recurrent layer whose cell is chosen at run time, as the command line needs.

use std::fmt;
use std::str::FromStr;

use rnn::{
    Gru, Lstm, Module, Nonlinearity, Parameter, RecurrentConfig, RecurrentOutput, Rnn, RnnError,
    TensorRng, Var,
};

/// The built-in cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// The plain tanh RNN.
    Rnn,
    /// The LSTM.
    Lstm,
    /// The GRU.
    Gru,
}

impl CellKind {
    /// All three, in the order the account introduces them.
    pub const ALL: [CellKind; 3] = [CellKind::Rnn, CellKind::Lstm, CellKind::Gru];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CellKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rnn" => Ok(CellKind::Rnn),
            "lstm" => Ok(CellKind::Lstm),
            "gru" => Ok(CellKind::Gru),
            other => Err(format!(
                "unknown cell `{other}` (expected rnn, lstm or gru)"
            )),
        }
    }
}

/// An RNN (tanh), LSTM or GRU layer.
pub enum AnyRecurrent {
    /// `nn.RNN` with tanh.
    Rnn(Rnn<f32>),
    /// `nn.LSTM`.
    Lstm(Lstm<f32>),
    /// `nn.GRU`.
    Gru(Gru<f32>),
}

impl AnyRecurrent {
    /// A layer of the given kind with PyTorch's default initialization.
    pub fn new(kind: CellKind, config: &RecurrentConfig, rng: &mut TensorRng) -> Self {
        match kind {
            CellKind::Rnn => AnyRecurrent::Rnn(Rnn::rnn(config, Nonlinearity::Tanh, rng)),
            CellKind::Lstm => AnyRecurrent::Lstm(Lstm::lstm(config, 0, rng)),
            CellKind::Gru => AnyRecurrent::Gru(Gru::gru(config, rng)),
        }
    }

    /// Which cell.
    pub fn kind(&self) -> CellKind {
        match self {
            AnyRecurrent::Rnn(_) => CellKind::Rnn,
            AnyRecurrent::Lstm(_) => CellKind::Lstm,
            AnyRecurrent::Gru(_) => CellKind::Gru,
        }
    }

    /// Runs the layer (see [`rnn::Recurrent::forward`]).
    pub fn forward(
        &self,
        input: &Var<f32>,
        initial_states: Option<&[Var<f32>]>,
        lengths: Option<&[usize]>,
    ) -> Result<RecurrentOutput<f32>, RnnError> {
        match self {
            AnyRecurrent::Rnn(l) => l.forward(input, initial_states, lengths),
            AnyRecurrent::Lstm(l) => l.forward(input, initial_states, lengths),
            AnyRecurrent::Gru(l) => l.forward(input, initial_states, lengths),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        match self {
            AnyRecurrent::Rnn(l) => l.config(),
            AnyRecurrent::Lstm(l) => l.config(),
            AnyRecurrent::Gru(l) => l.config(),
        }
    }

    /// Sets the LSTM's forget-gate bias; no effect on other cells.
    pub fn set_forget_bias(&self, value: f32) {
        if let AnyRecurrent::Lstm(l) = self {
            l.set_forget_bias(value);
        }
    }

    /// Multiplies every recurrent weight matrix (`weight_hh_*`) by `scale`.
    pub fn scale_recurrent_weights(&self, scale: f32) {
        for (name, param) in self.named_parameters() {
            if name.starts_with("weight_hh") {
                param.update(|w| w.scale_assign(scale));
            }
        }
    }
}

impl Module<f32> for AnyRecurrent {
    fn named_parameters(&self) -> Vec<(String, Parameter<f32>)> {
        match self {
            AnyRecurrent::Rnn(l) => l.named_parameters(),
            AnyRecurrent::Lstm(l) => l.named_parameters(),
            AnyRecurrent::Gru(l) => l.named_parameters(),
        }
    }

    fn set_training(&self, training: bool) {
        match self {
            AnyRecurrent::Rnn(l) => l.set_training(training),
            AnyRecurrent::Lstm(l) => l.set_training(training),
            AnyRecurrent::Gru(l) => l.set_training(training),
        }
    }

    fn is_training(&self) -> bool {
        match self {
            AnyRecurrent::Rnn(l) => l.is_training(),
            AnyRecurrent::Lstm(l) => l.is_training(),
            AnyRecurrent::Gru(l) => l.is_training(),
        }
    }
}
