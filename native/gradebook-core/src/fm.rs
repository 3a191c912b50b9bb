//! The float functions the core needs that live in `std`, not `core` (Rust 1.85).
//!
//! With the `std` feature they are std's.  Without it (the browser build, `no_std`) they are the
//! compiler-builtins routines that std's methods call on wasm32 anyway (libm's `floor`, `ceil`,
//! `trunc`, `sqrt`, `log10` and the compiler's `powi`), so the results are those of the std build
//! of the same target.

#[cfg(feature = "std")]
mod imp {
    #[inline]
    pub fn floor(x: f64) -> f64 {
        x.floor()
    }
    #[inline]
    pub fn ceil(x: f64) -> f64 {
        x.ceil()
    }
    #[inline]
    pub fn trunc(x: f64) -> f64 {
        x.trunc()
    }
    #[inline]
    pub fn sqrt(x: f64) -> f64 {
        x.sqrt()
    }
    #[inline]
    pub fn log10(x: f64) -> f64 {
        x.log10()
    }
    #[inline]
    pub fn powi(x: f64, n: i32) -> f64 {
        x.powi(n)
    }
}

#[cfg(all(not(feature = "std"), target_arch = "wasm32"))]
#[allow(unsafe_code)] // compiler-builtins symbols: pure functions of their arguments
mod imp {
    extern "C" {
        #[link_name = "floor"]
        fn cb_floor(x: f64) -> f64;
        #[link_name = "ceil"]
        fn cb_ceil(x: f64) -> f64;
        #[link_name = "trunc"]
        fn cb_trunc(x: f64) -> f64;
        #[link_name = "sqrt"]
        fn cb_sqrt(x: f64) -> f64;
        #[link_name = "log10"]
        fn cb_log10(x: f64) -> f64;
        fn __powidf2(x: f64, n: i32) -> f64;
    }

    // SAFETY (all): the routines std's f64 methods call on wasm32 (compiler-builtins' libm and
    // its `powi`); no pointers, no state.
    #[inline]
    pub fn floor(x: f64) -> f64 {
        unsafe { cb_floor(x) }
    }
    #[inline]
    pub fn ceil(x: f64) -> f64 {
        unsafe { cb_ceil(x) }
    }
    #[inline]
    pub fn trunc(x: f64) -> f64 {
        unsafe { cb_trunc(x) }
    }
    #[inline]
    pub fn sqrt(x: f64) -> f64 {
        unsafe { cb_sqrt(x) }
    }
    #[inline]
    pub fn log10(x: f64) -> f64 {
        unsafe { cb_log10(x) }
    }
    #[inline]
    pub fn powi(x: f64, n: i32) -> f64 {
        unsafe { __powidf2(x, n) }
    }
}

#[cfg(all(not(feature = "std"), not(target_arch = "wasm32")))]
compile_error!("gradebook-core without the `std` feature is only for wasm32 (the browser bundle)");

pub use imp::*;

/// `|x|` (clears the sign bit, like `f64::abs`).
#[inline]
pub fn abs(x: f64) -> f64 {
    f64::from_bits(x.to_bits() & !(1u64 << 63))
}

/// `x.fract()`.
#[inline]
pub fn fract(x: f64) -> f64 {
    x - trunc(x)
}
