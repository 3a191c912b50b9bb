//! Browser binding of the gradebook core for the "what-if" widget.
//!
//! The AMD module builds a [`WhatIf`] from the course JSON returned by the
//! `local_nativegrades_get_user_gradebook` web service, then calls [`WhatIf::recompute`] with the
//! student's (edited) cells for one user and reads back final grades for every item.
#![allow(unsafe_code)] // wasm-bindgen generated glue

use gradebook_core::formula::Func;
use gradebook_core::{regrade_packed, Course, Platform};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `Number(string)`: correctly rounded like Rust's `str::parse::<f64>`, and for
    /// the number tokens the core hands it (`-+.eE0-9` only) it accepts the same strings, with
    /// `NaN` where Rust fails.  Using it keeps a float parser (~16 KB) out of the bundle.
    #[wasm_bindgen(js_name = Number)]
    fn js_number(s: &str) -> f64;
}

/// `Math.*` for EvalMath's transcendental functions and `pow()`, instead of a copy of libm in
/// the bundle.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Math)]
    fn sin(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn sinh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn asin(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn asinh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn cos(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn cosh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn acos(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn acosh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn tan(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn tanh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn atan(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn atanh(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn log(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn exp(x: f64) -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn pow(x: f64, y: f64) -> f64;
}

fn parse_num(s: &str) -> Option<f64> {
    let v = js_number(s);
    (!v.is_nan()).then_some(v)
}

fn js_builtin(f: Func, a: f64) -> f64 {
    match f {
        Func::Sin => sin(a),
        Func::Sinh => sinh(a),
        Func::Asin => asin(a),
        Func::Asinh => asinh(a),
        Func::Cos => cos(a),
        Func::Cosh => cosh(a),
        Func::Acos => acos(a),
        Func::Acosh => acosh(a),
        Func::Tan => tan(a),
        Func::Tanh => tanh(a),
        Func::Atan => atan(a),
        Func::Atanh => atanh(a),
        Func::Ln => log(a),
        Func::Exp => exp(a),
        // sqrt, abs, floor, ceil are single WebAssembly instructions.
        _ => apply_exact(f, a),
    }
}

fn apply_exact(f: Func, a: f64) -> f64 {
    match f {
        Func::Sqrt => a.sqrt(),
        Func::Abs => a.abs(),
        Func::Floor => a.floor(),
        Func::Ceil => a.ceil(),
        _ => f64::NAN,
    }
}

const BROWSER: Platform = Platform { parse_num, builtin: js_builtin, pow };

#[wasm_bindgen]
#[derive(Debug)]
pub struct WhatIf {
    course: Course,
}

#[wasm_bindgen]
impl WhatIf {
    /// Compile a course description; throws a JS `Error` with the reason on bad input.
    #[wasm_bindgen(constructor)]
    pub fn new(spec: &str) -> Result<WhatIf, JsError> {
        Course::from_json_with(spec, BROWSER).map(|course| WhatIf { course }).map_err(|e| JsError::new(&e))
    }

    #[wasm_bindgen(getter)]
    pub fn nitems(&self) -> usize {
        self.course.items.len()
    }

    /// Regrade one user.  Returns final grades per item with `NaN` for an empty grade.
    pub fn recompute(&self, cells: &[f64], flags: &[u8]) -> Result<Vec<f64>, JsError> {
        let r = regrade_packed(&self.course, 1, cells, flags).map_err(|e| JsError::new(&e))?;
        Ok(r.finalgrade
            .iter()
            .zip(&r.has_value)
            .map(|(g, h)| if *h == 1 { *g } else { f64::NAN })
            .collect())
    }
}
