//! Every hook the core takes from the platform it runs on, in one place.
//!
//! [`Platform::RUST`] everywhere but in the browser, where the bundle uses JavaScript's `Number()`
//! and `Math` instead of carrying its own float parser and libm (they would triple its size).
//! `Number()` is correctly rounded like Rust's parser; `Math.sin` & co. are, like glibc's and
//! Rust's, within an ulp of the exact value, which the `DECIMAL(10,5)` rounding of every stored
//! grade hides.
//!
//! Without `std` (the browser bundle) the core calls the binding's `gradebook_platform_parse_num`,
//! `gradebook_platform_builtin` and `gradebook_platform_pow` (`#[no_mangle]` functions, the same
//! ones the binding puts into its `Platform`) directly: a call through a pointer stored in the
//! course would keep every function-pointer target of the program, `core::fmt`'s included, in the
//! bundle.  The `call_*` functions below are the only places that choose between the two.

use crate::func::Func;

/// Turns a number token (only `-+.eE0-9` characters) into a double, `None` if it is not one.
/// [`rust_parse_num`] is Rust's correctly rounded `str::parse`; the browser build passes
/// JavaScript's `Number()` (also correctly rounded, and for these tokens accepting the same
/// strings) so the bundle carries no float parser of its own.
pub type ParseNum = fn(&str) -> Option<f64>;

/// A one-argument function of EvalMath (`sin`, `ln`, ...) applied to a value.
pub type Builtin = fn(Func, f64) -> f64;

/// `pow()` as the platform has it (PHP calls the C library's).
pub type Pow = fn(f64, f64) -> f64;

/// What the core takes from the platform it runs on (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub parse_num: ParseNum,
    pub builtin: Builtin,
    /// `pow()` for the `^` operator and `power()`.
    pub pow: Pow,
}

#[cfg(feature = "std")]
impl Platform {
    pub const RUST: Platform = Platform { parse_num: rust_parse_num, builtin: apply_builtin, pow: f64::powf };
}

impl Platform {
    /// The number parser to call.
    #[inline]
    pub fn parse_num_fn(&self) -> ParseNum {
        #[cfg(feature = "std")]
        return self.parse_num;
        #[cfg(not(feature = "std"))]
        return imp::platform_parse_num;
    }
    /// The one-argument functions to call.
    #[inline]
    pub fn builtin_fn(&self) -> Builtin {
        #[cfg(feature = "std")]
        return self.builtin;
        #[cfg(not(feature = "std"))]
        return imp::platform_builtin;
    }
    /// The `pow()` to call.
    #[inline]
    pub fn pow_fn(&self) -> Pow {
        #[cfg(feature = "std")]
        return self.pow;
        #[cfg(not(feature = "std"))]
        return imp::platform_pow;
    }
}

/// `str::parse::<f64>`, the default [`ParseNum`].
#[cfg(feature = "std")]
pub fn rust_parse_num(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// The one-argument functions through Rust's `f64` methods (the platform's libm).
#[cfg(feature = "std")]
pub fn apply_builtin(f: Func, a: f64) -> f64 {
    match f {
        Func::Sin => a.sin(),
        Func::Sinh => a.sinh(),
        Func::Asin => a.asin(),
        Func::Asinh => a.asinh(),
        Func::Cos => a.cos(),
        Func::Cosh => a.cosh(),
        Func::Acos => a.acos(),
        Func::Acosh => a.acosh(),
        Func::Tan => a.tan(),
        Func::Tanh => a.tanh(),
        Func::Atan => a.atan(),
        Func::Atanh => a.atanh(),
        Func::Sqrt => a.sqrt(),
        Func::Abs => a.abs(),
        Func::Ln => a.ln(),
        Func::Exp => a.exp(),
        Func::Floor => a.floor(),
        Func::Ceil => a.ceil(),
        _ => f64::NAN,
    }
}

/// `num(t)`; without `std`, the binding's parser called directly.
#[inline]
pub(crate) fn call_parse_num(num: ParseNum, t: &str) -> Option<f64> {
    #[cfg(feature = "std")]
    return num(t);
    #[cfg(not(feature = "std"))]
    {
        let _ = num;
        imp::platform_parse_num(t)
    }
}

/// `builtin(f, a)`; without `std`, the binding's functions called directly.
#[inline]
pub(crate) fn call_builtin(builtin: Builtin, f: Func, a: f64) -> f64 {
    #[cfg(feature = "std")]
    return builtin(f, a);
    #[cfg(not(feature = "std"))]
    {
        let _ = builtin;
        imp::platform_builtin(f, a)
    }
}

/// `pow(x, y)`; without `std`, the binding's `pow()` called directly.
#[inline]
pub(crate) fn call_pow(pow: Pow, x: f64, y: f64) -> f64 {
    #[cfg(feature = "std")]
    return pow(x, y);
    #[cfg(not(feature = "std"))]
    {
        let _ = pow;
        imp::platform_pow(x, y)
    }
}

#[cfg(all(not(feature = "std"), target_arch = "wasm32"))]
#[allow(unsafe_code)] // the binding's #[no_mangle] Rust functions, declared here
mod imp {
    use crate::func::Func;

    extern "Rust" {
        fn gradebook_platform_parse_num(s: &str) -> Option<f64>;
        fn gradebook_platform_builtin(f: Func, a: f64) -> f64;
        fn gradebook_platform_pow(x: f64, y: f64) -> f64;
    }

    /// The binding's number parser (a direct call; see `Platform::parse_num_fn`).
    pub fn platform_parse_num(s: &str) -> Option<f64> {
        // SAFETY: an ordinary Rust function of the binding (`#[no_mangle]`), same signature.
        unsafe { gradebook_platform_parse_num(s) }
    }
    /// The binding's one-argument functions.
    pub fn platform_builtin(f: Func, a: f64) -> f64 {
        // SAFETY: as above.
        unsafe { gradebook_platform_builtin(f, a) }
    }
    /// The binding's `pow()`.
    pub fn platform_pow(x: f64, y: f64) -> f64 {
        // SAFETY: as above.
        unsafe { gradebook_platform_pow(x, y) }
    }
}
