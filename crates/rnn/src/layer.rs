//! [`Recurrent`]: the layer machinery, written once for any [`Cell`]: the time loop, stacked
//! layers, the reverse direction, variable lengths, initial states and dropout between layers.

use std::cell::{Cell as FlagCell, RefCell};

use autograd::{Parameter, Var};
use tensor::{Element, Tensor, TensorRng, seeded_rng};

use crate::cell::{Cell, GruCell, LstmCell, Nonlinearity, RnnCell};
use crate::error::RnnError;
use crate::init::{Init, init_gate_blocks, orthogonal, xavier_uniform};
use crate::module::Module;

/// The options PyTorch's `nn.RNN`, `nn.LSTM` and `nn.GRU` share.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// Features per input step.
    pub input_size: usize,
    /// Features of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers (each after the first reads the previous layer's output).
    pub num_layers: usize,
    /// Whether cells have bias vectors.
    pub bias: bool,
    /// Input and output as `[batch, time, features]` instead of `[time, batch, features]`.
    pub batch_first: bool,
    /// Dropout probability on each layer's output except the last, in training mode only.
    pub dropout: f64,
    /// Run a second direction over the reversed sequence and concatenate the outputs.
    pub bidirectional: bool,
}

impl RecurrentConfig {
    /// One unidirectional layer with biases, time-major, no dropout: PyTorch's defaults.
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
        }
    }

    /// Sets the number of stacked layers.
    pub fn num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets whether cells have biases.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets batch-major input and output.
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Sets the dropout between layers.
    pub fn dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets bidirectionality.
    pub fn bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// 2 when bidirectional, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    fn validate(&self) -> Result<(), RnnError> {
        let mut problems = Vec::new();
        if self.hidden_size == 0 {
            problems.push("hidden_size must be positive".to_string());
        }
        if self.num_layers == 0 {
            problems.push("num_layers must be positive".to_string());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            problems.push(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RnnError::Config(problems.join("; ")))
        }
    }
}

/// What a forward pass returns.
pub struct RecurrentOutput<T: Element> {
    /// The last layer's output at every step: `[time, batch, directions · output_size]`
    /// (`[batch, time, …]` when batch-first); zero past each sequence's length.
    pub output: Var<T>,
    /// The final states, one per state kind (`h_n`, then `c_n` for an LSTM), each
    /// `[layers · directions, batch, size]`, ordered layer 0 forward, layer 0 reverse, layer 1 …
    pub final_states: Vec<Var<T>>,
    /// Every step's state for every layer and direction: `steps[layer · D + direction][t]` is
    /// the state after reading step `t` (in time order for both directions). Read them, retain
    /// their gradients or hook them: e.g. ∂L/∂h_t for the vanishing-gradient study.
    pub steps: Vec<Vec<Vec<Var<T>>>>,
}

impl<T: Element> RecurrentOutput<T> {
    /// `h_n`.
    pub fn h_n(&self) -> &Var<T> {
        &self.final_states[0]
    }

    /// `c_n` (LSTM only).
    pub fn c_n(&self) -> Option<&Var<T>> {
        self.final_states.get(1)
    }
}

/// A multi-layer, optionally bidirectional recurrent layer over any [`Cell`].
///
/// ```
/// use tapeloop_rnn::{Lstm, RecurrentConfig, Var, Tensor, seeded_rng};
///
/// let mut rng = seeded_rng(0);
/// let lstm = Lstm::<f32>::lstm(&RecurrentConfig::new(8, 16).num_layers(2).bidirectional(true), 0, &mut rng);
/// let x = Var::constant(Tensor::randn(&[5, 3, 8], &mut rng)); // [time, batch, features]
/// let out = lstm.forward(&x, None, None).unwrap();
/// assert_eq!(out.output.shape(), &[5, 3, 32]);
/// assert_eq!(out.h_n().shape(), &[4, 3, 16]);
/// assert_eq!(out.c_n().unwrap().shape(), &[4, 3, 16]);
/// ```
pub struct Recurrent<T: Element, C: Cell<T>> {
    /// Cells in PyTorch's order: layer-major, then direction.
    cells: Vec<C>,
    config: RecurrentConfig,
    training: FlagCell<bool>,
    dropout_rng: RefCell<TensorRng>,
    _element: std::marker::PhantomData<T>,
}

/// `nn.RNN`.
pub type Rnn<T> = Recurrent<T, RnnCell<T>>;
/// `nn.LSTM`.
pub type Lstm<T> = Recurrent<T, LstmCell<T>>;
/// `nn.GRU`.
pub type Gru<T> = Recurrent<T, GruCell<T>>;

impl<T: Element> Recurrent<T, RnnCell<T>> {
    /// `nn.RNN` with PyTorch's default initialization; panics on an invalid configuration.
    #[track_caller]
    pub fn rnn(config: &RecurrentConfig, nonlinearity: Nonlinearity, rng: &mut TensorRng) -> Self {
        Self::with_cells(config, rng, |input, rng| {
            RnnCell::new(input, config.hidden_size, config.bias, nonlinearity, rng)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl<T: Element> Recurrent<T, LstmCell<T>> {
    /// `nn.LSTM` with PyTorch's default initialization; `proj_size` 0 means no projection.
    #[track_caller]
    pub fn lstm(config: &RecurrentConfig, proj_size: usize, rng: &mut TensorRng) -> Self {
        // A zero hidden size is the configuration's own error (below), as in PyTorch.
        assert!(
            proj_size == 0 || proj_size < config.hidden_size,
            "lstm: proj_size {proj_size} must be smaller than hidden_size {}",
            config.hidden_size
        );
        let output_size = if proj_size > 0 {
            proj_size
        } else {
            config.hidden_size
        };
        Self::with_cells_sized(config, output_size, rng, |input, rng| {
            LstmCell::new(input, config.hidden_size, config.bias, proj_size, rng)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sets every forget-gate bias to `value` (split as `b_ih = value`, `b_hh = 0`):
    /// Jozefowicz et al. (2015) recommend 1; larger values keep gradients alive longer at
    /// initialization. Does nothing without biases.
    pub fn set_forget_bias(&self, value: T) {
        for cell in &self.cells {
            let hidden = cell.hidden_size();
            for (bias, fill) in [(&cell.bias_ih, value), (&cell.bias_hh, T::zero())] {
                if let Some(bias) = bias {
                    let mut values = bias.value().to_vec();
                    values[hidden..2 * hidden].fill(fill);
                    bias.set_value(Tensor::from_vec(values, &[4 * hidden]))
                        .expect("same shape");
                }
            }
        }
    }
}

impl<T: Element> Recurrent<T, GruCell<T>> {
    /// `nn.GRU` with PyTorch's default initialization.
    #[track_caller]
    pub fn gru(config: &RecurrentConfig, rng: &mut TensorRng) -> Self {
        Self::with_cells(config, rng, |input, rng| {
            GruCell::new(input, config.hidden_size, config.bias, rng)
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl<T: Element, C: Cell<T>> Recurrent<T, C> {
    /// Builds a layer from a cell constructor, called once per layer and direction with the
    /// input size that cell reads (the input size for layer 0, `directions · hidden_size` after).
    /// This is how a user-defined cell becomes a multi-layer, bidirectional layer.
    pub fn with_cells(
        config: &RecurrentConfig,
        rng: &mut TensorRng,
        make_cell: impl FnMut(usize, &mut TensorRng) -> C,
    ) -> Result<Self, RnnError> {
        Self::with_cells_sized(config, config.hidden_size, rng, make_cell)
    }

    fn with_cells_sized(
        config: &RecurrentConfig,
        output_size: usize,
        rng: &mut TensorRng,
        mut make_cell: impl FnMut(usize, &mut TensorRng) -> C,
    ) -> Result<Self, RnnError> {
        config.validate()?;
        let directions = config.directions();
        let mut cells = Vec::with_capacity(config.num_layers * directions);
        for layer in 0..config.num_layers {
            let input = if layer == 0 {
                config.input_size
            } else {
                directions * output_size
            };
            for _ in 0..directions {
                cells.push(make_cell(input, rng));
            }
        }
        Self::from_cells(config, cells, rng)
    }

    /// Builds a layer from ready cells in PyTorch's order (layer-major, then direction),
    /// checking that their sizes chain.
    pub fn from_cells(
        config: &RecurrentConfig,
        cells: Vec<C>,
        rng: &mut TensorRng,
    ) -> Result<Self, RnnError> {
        config.validate()?;
        let directions = config.directions();
        if cells.len() != config.num_layers * directions {
            return Err(RnnError::Config(format!(
                "{} layers × {} directions need {} cells, got {}",
                config.num_layers,
                directions,
                config.num_layers * directions,
                cells.len()
            )));
        }
        let output_size = cells[0].state_sizes()[0];
        for (i, cell) in cells.iter().enumerate() {
            let layer = i / directions;
            let expected = if layer == 0 {
                config.input_size
            } else {
                directions * output_size
            };
            if cell.input_size() != expected || cell.state_sizes()[0] != output_size {
                return Err(RnnError::Config(format!(
                    "cell {i} (layer {layer}) reads {} features and outputs {}; expected {} and {}",
                    cell.input_size(),
                    cell.state_sizes()[0],
                    expected,
                    output_size
                )));
            }
        }
        let seed = rand::RngExt::random::<u64>(rng);
        Ok(Self {
            cells,
            config: config.clone(),
            training: FlagCell::new(true),
            dropout_rng: RefCell::new(seeded_rng(seed)),
            _element: std::marker::PhantomData,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RecurrentConfig {
        &self.config
    }

    /// The cells, layer-major then direction.
    pub fn cells(&self) -> &[C] {
        &self.cells
    }

    /// Size of each step's output per direction (the hidden size, or the projection size).
    pub fn output_size(&self) -> usize {
        self.cells[0].state_sizes()[0]
    }

    /// Re-draws the weights with another scheme (biases become 0 except under
    /// [`Init::PyTorchDefault`]). `gates` is the number of gate blocks per weight (RNN 1,
    /// GRU 3, LSTM 4), each initialized as its own matrix.
    pub fn reinitialize(&self, init: Init, rng: &mut TensorRng) {
        for cell in &self.cells {
            for (name, param) in cell.parameters() {
                let shape = param.shape();
                let gates = (shape[0] / self.config.hidden_size).max(1);
                match (init, name.as_str(), shape.len()) {
                    (Init::PyTorchDefault, _, _) => {
                        let fresh = crate::init::uniform_parameter::<T>(
                            &shape,
                            self.config.hidden_size,
                            rng,
                        );
                        param.set_value(fresh.value()).expect("same shape");
                    }
                    (_, _, 1) => param.update(|b| b.fill(T::zero())),
                    (Init::Orthogonal, "weight_hh", _) => {
                        init_gate_blocks(&param, gates, orthogonal, rng)
                    }
                    (_, "weight_hr", _) => init_gate_blocks(&param, 1, xavier_uniform, rng),
                    _ => init_gate_blocks(&param, gates, xavier_uniform, rng),
                }
            }
        }
    }

    /// Runs the layer.
    ///
    /// - `input`: `[time, batch, input_size]` (or `[batch, time, input_size]` when batch-first).
    /// - `initial_states`: per state kind (`h0`, then `c0` for an LSTM), each
    ///   `[layers · directions, batch, size]`; zeros when `None`.
    /// - `lengths`: one length per sequence for a padded batch (PyTorch's
    ///   `pack_padded_sequence` semantics: outputs past a length are zero, final states are
    ///   taken at each sequence's own last step, the reverse direction starts there).
    pub fn forward(
        &self,
        input: &Var<T>,
        initial_states: Option<&[Var<T>]>,
        lengths: Option<&[usize]>,
    ) -> Result<RecurrentOutput<T>, RnnError> {
        let input = if self.config.batch_first && input.rank() == 3 {
            input.transpose(0, 1)
        } else {
            input.clone()
        };
        let (steps, batch) = self.check_input(&input, initial_states, lengths)?;
        let directions = self.config.directions();
        let state_sizes = self.cells[0].state_sizes();
        let step_masks = lengths.map(|lengths| step_masks::<T>(lengths, steps));

        let mut layer_input = input;
        let mut finals: Vec<Vec<Var<T>>> = vec![Vec::new(); state_sizes.len()];
        let mut all_steps = Vec::with_capacity(self.cells.len());
        for layer in 0..self.config.num_layers {
            let mut outputs = Vec::with_capacity(directions);
            for direction in 0..directions {
                let index = layer * directions + direction;
                let cell = &self.cells[index];
                let initial: Vec<Var<T>> = state_sizes
                    .iter()
                    .enumerate()
                    .map(|(kind, &size)| match initial_states {
                        Some(states) => states[kind].select(0, index),
                        None => Var::constant(Tensor::zeros(&[batch, size])),
                    })
                    .collect();
                let run = run_direction(
                    cell,
                    &layer_input,
                    initial,
                    direction == 1,
                    step_masks.as_deref(),
                );
                for (kind, state) in run.final_state.into_iter().enumerate() {
                    finals[kind].push(state);
                }
                outputs.push(run.output);
                all_steps.push(run.states);
            }
            let refs: Vec<&Var<T>> = outputs.iter().collect();
            layer_input = if directions == 1 {
                outputs[0].clone()
            } else {
                Var::cat(&refs, -1)
            };
            if layer + 1 < self.config.num_layers {
                layer_input = self.dropout_between_layers(layer_input);
            }
        }
        let final_states = finals
            .iter()
            .map(|states| {
                let refs: Vec<&Var<T>> = states.iter().collect();
                Var::stack(&refs, 0)
            })
            .collect();
        let output = if self.config.batch_first {
            layer_input.transpose(0, 1)
        } else {
            layer_input
        };
        Ok(RecurrentOutput {
            output,
            final_states,
            steps: all_steps,
        })
    }

    fn dropout_between_layers(&self, x: Var<T>) -> Var<T> {
        let p = self.config.dropout;
        if p == 0.0 || !self.training.get() {
            return x;
        }
        let keep = T::from_f64_lossy(1.0 / (1.0 - p));
        let mask = Tensor::<T>::rand_uniform(
            x.shape(),
            T::zero(),
            T::one(),
            &mut *self.dropout_rng.borrow_mut(),
        )
        .map(|u| {
            if u.to_f64_lossy() >= p {
                keep
            } else {
                T::zero()
            }
        });
        &x * &Var::constant(mask)
    }

    fn check_input(
        &self,
        input: &Var<T>,
        initial_states: Option<&[Var<T>]>,
        lengths: Option<&[usize]>,
    ) -> Result<(usize, usize), RnnError> {
        let layout = if self.config.batch_first {
            "[batch, time, features]"
        } else {
            "[time, batch, features]"
        };
        if input.rank() != 3 || input.shape()[2] != self.config.input_size {
            return Err(RnnError::Shape(format!(
                "input must be {layout} with {} features, got shape {:?}",
                self.config.input_size,
                if self.config.batch_first && input.rank() == 3 {
                    input.transpose(0, 1).shape().to_vec()
                } else {
                    input.shape().to_vec()
                }
            )));
        }
        let (steps, batch) = (input.shape()[0], input.shape()[1]);
        let count = self.cells.len();
        let sizes = self.cells[0].state_sizes();
        let names = self.cells[0].state_names();
        if let Some(states) = initial_states {
            if states.len() != sizes.len() {
                return Err(RnnError::Shape(format!(
                    "expected {} initial state tensors ({}), got {}",
                    sizes.len(),
                    names.join(", "),
                    states.len()
                )));
            }
            for ((state, &size), name) in states.iter().zip(&sizes).zip(&names) {
                let expected = [count, batch, size];
                if state.shape() != expected {
                    return Err(RnnError::Shape(format!(
                        "initial {name}0 must have shape {expected:?} (layers·directions, batch, size), got {:?}",
                        state.shape()
                    )));
                }
            }
        }
        if let Some(lengths) = lengths {
            if lengths.len() != batch {
                return Err(RnnError::Shape(format!(
                    "lengths has {} entries but the batch has {batch} sequences",
                    lengths.len()
                )));
            }
            if let Some(bad) = lengths.iter().find(|&&l| l == 0 || l > steps) {
                return Err(RnnError::Shape(format!(
                    "every length must be in 1..={steps} (the padded length), got {bad} in {lengths:?}"
                )));
            }
        }
        Ok((steps, batch))
    }
}

/// `masks[t]` is `[batch, 1]`: 1 where step `t` is inside the sequence, 0 in its padding.
fn step_masks<T: Element>(lengths: &[usize], steps: usize) -> Vec<Tensor<T>> {
    (0..steps)
        .map(|t| {
            let data = lengths
                .iter()
                .map(|&l| if t < l { T::one() } else { T::zero() })
                .collect();
            Tensor::from_vec(data, &[lengths.len(), 1])
        })
        .collect()
}

/// What one direction of one layer produced.
struct DirectionRun<T: Element> {
    /// `[time, batch, size]`.
    output: Var<T>,
    /// The state after every step, in time order.
    states: Vec<Vec<Var<T>>>,
    /// The state after the last step computed.
    final_state: Vec<Var<T>>,
}

/// Runs one cell over the sequence in one direction.
fn run_direction<T: Element, C: Cell<T>>(
    cell: &C,
    input: &Var<T>,
    initial: Vec<Var<T>>,
    reverse: bool,
    masks: Option<&[Tensor<T>]>,
) -> DirectionRun<T> {
    let (steps, batch, features) = (input.shape()[0], input.shape()[1], input.shape()[2]);
    // One matrix multiply for every step's input projection, then a view per step.
    let projected = cell.project_inputs(&input.reshape(&[steps * batch, features]));
    let width = projected.shape()[1];
    let projected = projected.reshape(&[steps, batch, width]);
    let mut state = initial;
    let mut outputs: Vec<Option<Var<T>>> = vec![None; steps];
    let mut states: Vec<Option<Vec<Var<T>>>> = vec![None; steps];
    let order: Box<dyn Iterator<Item = usize>> = if reverse {
        Box::new((0..steps).rev())
    } else {
        Box::new(0..steps)
    };
    for t in order {
        let mut next = cell.step(&projected.select(0, t), &state);
        let output = match masks {
            // Padding steps keep the previous state and emit zeros, so each sequence's final
            // state is the one after its own last step, and the reverse direction starts there.
            Some(masks) => {
                let mask = &masks[t];
                next = next
                    .iter()
                    .zip(&state)
                    .map(|(new, old)| Var::where_cond(mask, new, old))
                    .collect();
                &next[0] * &Var::constant(mask.clone())
            }
            None => next[0].clone(),
        };
        outputs[t] = Some(output);
        states[t] = Some(next.clone());
        state = next;
    }
    let outputs: Vec<Var<T>> = outputs.into_iter().flatten().collect();
    let refs: Vec<&Var<T>> = outputs.iter().collect();
    let states: Vec<Vec<Var<T>>> = states.into_iter().flatten().collect();
    // The last state computed: after step T−1 forward, after step 0 in reverse.
    let last = if reverse {
        states.first()
    } else {
        states.last()
    };
    let final_state = last.cloned().unwrap_or(state);
    DirectionRun {
        output: Var::stack(&refs, 0),
        states,
        final_state,
    }
}

impl<T: Element, C: Cell<T>> Module<T> for Recurrent<T, C> {
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        let directions = self.config.directions();
        let mut out = Vec::new();
        for (index, cell) in self.cells.iter().enumerate() {
            let (layer, direction) = (index / directions, index % directions);
            let suffix = if direction == 1 { "_reverse" } else { "" };
            for (name, param) in cell.parameters() {
                out.push((format!("{name}_l{layer}{suffix}"), param));
            }
        }
        out
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    fn is_training(&self) -> bool {
        self.training.get()
    }
}
