pub use autograd;
pub use rnn;
pub use tensor;
pub mod tasks;
