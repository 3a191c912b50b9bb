//! Browser binding of the gradebook core for the "what-if" widget.
//!
//! The AMD module builds a [`WhatIf`] from the course JSON returned by the
//! `local_nativegrades_get_user_gradebook` web service, then calls [`WhatIf::recompute`] with the
//! student's (edited) cells for one user and reads back final grades for every item.
#![allow(unsafe_code)] // wasm-bindgen generated glue

use gradebook_core::{regrade_packed, Course};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `Number(string)`: correctly rounded like Rust's `str::parse::<f64>`, and for
    /// the number tokens the core hands it (`-+.eE0-9` only) it accepts the same strings, with
    /// `NaN` where Rust fails.  Using it keeps a float parser (~16 KB) out of the bundle.
    #[wasm_bindgen(js_name = Number)]
    fn js_number(s: &str) -> f64;
}

fn parse_num(s: &str) -> Option<f64> {
    let v = js_number(s);
    (!v.is_nan()).then_some(v)
}

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
        Course::from_json_with(spec, &parse_num).map(|course| WhatIf { course }).map_err(|e| JsError::new(&e))
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
