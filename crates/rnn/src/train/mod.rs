//! The training loop's tools: gradient clipping, truncated backpropagation through time, and
//! crash-safe checkpoints that resume bit-identically.
//!
//! A training run on one machine is reproducible: the same seed gives the same
//! initialization, the same dropout masks and the same updates, bit for bit. Every random draw
//! comes from a caller-seeded [`TensorRng`](crate::TensorRng), and nothing depends on time,
//! addresses or thread scheduling. A checkpoint restores the parameters, the optimizer state and
//! the step counter exactly, so a resumed run continues as if uninterrupted (carry other state,
//! such as a [`Dropout`](crate::nn::Dropout)'s mask position, in the checkpoint's extra JSON).

mod checkpoint;
mod clip;
mod tbptt;

pub use checkpoint::{
    CHECKPOINT_FORMAT_VERSION, CheckpointInfo, StagedCheckpoint, checkpoint_info,
    current_checkpoint_dir, load_checkpoint, save_checkpoint, stage_checkpoint,
};
pub use clip::{clip_grad_norm, clip_grad_value, grad_norm};
pub use tbptt::{ChunkReport, TbpttOptions, TbpttRun, detach_state, truncated_bptt};
