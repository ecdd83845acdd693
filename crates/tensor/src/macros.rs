//! The panicking twin of every `try_` operation, generated so the two cannot drift apart.

/// For each `fn name => try_name(args) -> Ret;` defines `pub fn name(&self, args) -> Ret` that
/// calls `try_name` and panics with its error message.
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
