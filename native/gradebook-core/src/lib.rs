//! Moodle 4.5 gradebook regrade in pure Rust: category aggregation (every method, drop lowest /
//! keep highest, extra credit, Natural weights and per-user bounds), calculated items in Moodle's
//! formula syntax, and the `DECIMAL(10,5)` rounding the database applies between steps.
//!
//! No PHP, Python or JavaScript types here; the bindings (`gradebook-php`, `gradebook-py`,
//! `gradebook-wasm`) pass plain slices through [`regrade_packed`].
//!
//! Without the default `std` feature the crate is `no_std` + `alloc` (the browser bundle): no
//! `format!` anywhere (messages are built with [`cat!`]), float functions from [`fm`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

// Modules from the bottom up; each uses only modules above it in this list (docs/native.md,
// "Module layout").
#[macro_use]
pub mod msg;
pub mod fm;
pub mod func;
pub mod platform;
pub mod json;
pub mod phpmath;
pub mod formula;
pub mod model;
pub mod regrade;
pub mod spec;
pub mod compiled;

pub use model::{flag, Course};
pub use platform::Platform;
pub use regrade::{Scratch, UserGrades};

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use msg::Hex2;

/// Result of a whole-course regrade, row-major `users × items`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Regraded {
    /// Final grade (0.0 where `has_value` is 0).
    pub finalgrade: Vec<f64>,
    /// 1 where the final grade is set, 0 where it is empty.
    pub has_value: Vec<u8>,
    /// `grade_grades.rawgrademin` / `rawgrademax` (the per-user range of Natural totals).
    pub rawmin: Vec<f64>,
    pub rawmax: Vec<f64>,
}

/// The grade matrix as the bindings hold it: aligned doubles, or the little-endian bytes of
/// `pack('e*', ...)` read in place (no copy of the whole matrix).
pub trait Cells {
    fn count(&self) -> usize;
    fn at(&self, k: usize) -> f64;
}

impl Cells for [f64] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn at(&self, k: usize) -> f64 {
        self[k]
    }
}

/// Little-endian doubles (`pack('e*')`); the length must be a multiple of 8.
#[derive(Debug, Clone, Copy)]
pub struct LeBytes<'a>(pub &'a [u8]);

impl Cells for LeBytes<'_> {
    #[inline]
    fn count(&self) -> usize {
        self.0.len() / 8
    }
    #[inline]
    fn at(&self, k: usize) -> f64 {
        let b = &self.0[k * 8..k * 8 + 8];
        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

/// `NaN`, `inf` or `-inf` (the wording of the error messages of every engine).
fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// Check the grade matrix: lengths, non-finite values, unknown flag bits.  Nothing is computed
/// before this passed.
pub fn validate_packed<C: Cells + ?Sized>(course: &Course, nusers: usize, cells: &C, flags: &[u8]) -> Result<(), String> {
    let n = course.items.len();
    let expected = nusers.checked_mul(n).ok_or("too many users")?;
    if cells.count() != expected {
        return Err(cat!("grades: expected ", expected, " values (", nusers, " users x ", n, " items), got ", cells.count()));
    }
    if flags.len() != expected {
        return Err(cat!("flags: expected ", expected, " bytes (", nusers, " users x ", n, " items), got ", flags.len()));
    }
    for (k, &f) in flags.iter().enumerate() {
        if f & !flag::ALL != 0 {
            return Err(cat!("flags: unknown bits ", Hex2(f), " at user ", k / n.max(1), " item ", k % n.max(1)));
        }
        if f & flag::HAS_VALUE != 0 {
            let v = cells.at(k);
            if !v.is_finite() {
                return Err(cat!(
                    "grades: value at user ",
                    k / n.max(1),
                    " item ",
                    k % n.max(1),
                    " is not a finite number (",
                    non_finite_name(v),
                    ")"
                ));
            }
        }
    }
    Ok(())
}

/// Regrade every user, handing each user's result to `sink(user, grades)` (validated first).
pub fn regrade_each<C: Cells + ?Sized>(
    course: &Course,
    nusers: usize,
    cells: &C,
    flags: &[u8],
    mut sink: impl FnMut(usize, &UserGrades),
) -> Result<(), String> {
    validate_packed(course, nusers, cells, flags)?;
    run_each(course, nusers, cells, flags, &mut sink);
    Ok(())
}

fn run_each<C: Cells + ?Sized>(
    course: &Course,
    nusers: usize,
    cells: &C,
    flags: &[u8],
    sink: &mut impl FnMut(usize, &UserGrades),
) {
    let n = course.items.len();
    let mut row = vec![0.0; n];
    let mut user = UserGrades { finalgrade: Vec::new(), rawmin: Vec::new(), rawmax: Vec::new() };
    let mut scratch = Scratch::default();
    for u in 0..nusers {
        for (i, r) in row.iter_mut().enumerate() {
            *r = cells.at(u * n + i);
        }
        course.regrade_user(&row, &flags[u * n..(u + 1) * n], &mut user, &mut scratch);
        sink(u, &user);
    }
}

/// Regrade every user of a course in one call.
///
/// `cells` and `flags` are `users × items` row-major in the course's item order.  Errors are
/// reported before any computation: wrong lengths, non-finite values, unknown flag bits.
pub fn regrade_packed(course: &Course, nusers: usize, cells: &[f64], flags: &[u8]) -> Result<Regraded, String> {
    validate_packed(course, nusers, cells, flags)?;
    let expected = nusers * course.items.len();
    let mut out = Regraded {
        finalgrade: Vec::with_capacity(expected),
        has_value: Vec::with_capacity(expected),
        rawmin: Vec::with_capacity(expected),
        rawmax: Vec::with_capacity(expected),
    };
    run_each(course, nusers, cells, flags, &mut |_, user: &UserGrades| {
        for g in &user.finalgrade {
            out.finalgrade.push(g.unwrap_or(0.0));
            out.has_value.push(u8::from(g.is_some()));
        }
        out.rawmin.extend_from_slice(&user.rawmin);
        out.rawmax.extend_from_slice(&user.rawmax);
    });
    Ok(out)
}
