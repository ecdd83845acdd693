//! Differentiable ops, one family per file. Each op's forward and backward rule sit side by
//! side, and every backward rule is written with differentiable ops, so a backward pass run with
//! `create_graph` is itself recorded and can be differentiated again.

mod binary;
pub(crate) mod fused;
mod index;
mod join;
mod matmul;
mod operators;
mod reduce;
mod softmax;
mod unary;
mod view;

/// For each `fn name => try_name(args) -> Ret;` defines `pub fn name(&self, args) -> Ret` that
/// panics with `try_name`'s error message.
macro_rules! panicking_forms {
    ($( $(#[$meta:meta])* fn $name:ident => $try_name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*) => {
        $(
            $(#[$meta])*
            #[track_caller]
            pub fn $name(&self, $($arg: $ty),*) -> $ret {
                match self.$try_name($($arg),*) {
                    Ok(value) => value,
                    Err(error) => panic!("{error}"),
                }
            }
        )*
    };
}

pub(crate) use panicking_forms;
