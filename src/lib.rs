pub use autograd;
pub use rnn;
pub use tensor;
pub mod model;
pub mod tasks;
pub mod training;
