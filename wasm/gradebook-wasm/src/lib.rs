//! Browser binding of the gradebook core for the "what-if" widget.
//!
//! The AMD module builds a [`WhatIf`] from the compiled course returned by the
//! `local_nativegrades_get_user_gradebook` web service, then calls [`WhatIf::recompute`] with the
//! student's (edited) cells for one user and reads back final grades for every item.
//!
//! On wasm32 the crate is `no_std` (with the core's `std` feature off): a panic is a trap (there is
//! no message to show; every error the widget can meet is returned as a `Result`), and the heap is
//! the small size-class allocator below, so the bundle carries neither std's panic/formatting
//! runtime nor dlmalloc.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![allow(unsafe_code)] // wasm-bindgen generated glue, the allocator

extern crate alloc;

use alloc::vec::Vec;
use gradebook_core::fm;
use gradebook_core::func::Func;
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
        Func::Sqrt => fm::sqrt(a),
        Func::Abs => fm::abs(a),
        Func::Floor => fm::floor(a),
        Func::Ceil => fm::ceil(a),
        _ => f64::NAN,
    }
}

const BROWSER: Platform = Platform { parse_num, builtin: js_builtin, pow };

// The core built without `std` calls these directly (the same functions as in `BROWSER`).
#[cfg(target_arch = "wasm32")]
#[no_mangle]
fn gradebook_platform_parse_num(s: &str) -> Option<f64> {
    parse_num(s)
}
#[cfg(target_arch = "wasm32")]
#[no_mangle]
fn gradebook_platform_builtin(f: Func, a: f64) -> f64 {
    js_builtin(f, a)
}
#[cfg(target_arch = "wasm32")]
#[no_mangle]
fn gradebook_platform_pow(x: f64, y: f64) -> f64 {
    pow(x, y)
}

#[wasm_bindgen]
#[derive(Debug)]
pub struct WhatIf {
    course: Course,
}

#[wasm_bindgen]
impl WhatIf {
    /// Load a compiled course (the `compiled` doubles of `local_nativegrades_get_user_gradebook`,
    /// see `gradebook_core::compiled`); throws a JS `Error` on malformed data.
    #[wasm_bindgen(constructor)]
    pub fn new(compiled: &[f64]) -> Result<WhatIf, JsError> {
        Course::from_compiled(compiled, BROWSER).map(|course| WhatIf { course }).map_err(|e| JsError::new(&e))
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

/// A panic cannot happen on valid input and has no one to print to: trap.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

/// Size-class allocator for the single-threaded browser module: blocks of 2^k bytes (k >= 3),
/// freed blocks kept on one list per class and reused, new blocks taken from the end of the
/// linear memory (grown as needed).  A course's vectors are built once and then reused by
/// every recompute, so the lists stay short; the worst case is 2x the live size.
#[cfg(target_arch = "wasm32")]
mod heap {
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32;
    use core::cell::UnsafeCell;
    use core::ptr;

    const PAGE: usize = 65536;
    const CLASSES: usize = usize::BITS as usize;

    struct State {
        /// Head of each class's free list (0: empty); a free block starts with the next link.
        free: [usize; CLASSES],
        /// Bump region [next, end).
        next: usize,
        end: usize,
    }

    #[derive(Debug)]
    pub struct Heap(UnsafeCell<State>);

    // SAFETY: wasm32 without the atomics feature has a single thread.
    unsafe impl Sync for Heap {}

    impl Heap {
        pub const fn new() -> Heap {
            Heap(UnsafeCell::new(State { free: [0; CLASSES], next: 0, end: 0 }))
        }
    }

    /// Class of a layout: the smallest k with 2^k >= max(size, align, 8).
    fn class(layout: &Layout) -> usize {
        let s = layout.size().max(layout.align()).max(8);
        (usize::BITS - (s - 1).leading_zeros()) as usize
    }

    // SAFETY: blocks are handed out once until freed; a block of class k is 2^k bytes, aligned
    // to max(align, 8), and only reused for layouts of the same class with align <= 8.
    unsafe impl GlobalAlloc for Heap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let st = &mut *self.0.get();
            let k = class(&layout);
            if k >= CLASSES - 1 {
                return ptr::null_mut();
            }
            let head = st.free[k];
            if head != 0 && layout.align() <= 8 {
                st.free[k] = *(head as *const usize);
                return head as *mut u8;
            }
            if st.end == 0 {
                // Everything past the initial memory (data, stack, statics) is free.
                st.end = wasm32::memory_size(0) * PAGE;
                st.next = st.end;
            }
            let align = layout.align().max(8);
            let start = match st.next.checked_add(align - 1) {
                Some(v) => v & !(align - 1),
                None => return ptr::null_mut(),
            };
            let stop = match start.checked_add(1usize << k) {
                Some(v) => v,
                None => return ptr::null_mut(),
            };
            if stop > st.end {
                let pages = (stop - st.end).div_ceil(PAGE);
                if wasm32::memory_grow(0, pages) == usize::MAX {
                    return ptr::null_mut();
                }
                st.end += pages * PAGE;
            }
            st.next = stop;
            start as *mut u8
        }

        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            let st = &mut *self.0.get();
            let k = class(&layout);
            *(p as *mut usize) = st.free[k];
            st.free[k] = p as usize;
        }

        unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            if class(&new) == class(&layout) {
                return p;
            }
            let q = self.alloc(new);
            if !q.is_null() {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}
