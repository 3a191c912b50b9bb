//! Moodle 4.5 gradebook regrade in pure Rust: category aggregation (every method, drop lowest /
//! keep highest, extra credit, Natural weights and per-user bounds), calculated items in Moodle's
//! formula syntax, and the `DECIMAL(10,5)` rounding the database applies between steps.
//!
//! No PHP, Python or JavaScript types here; the bindings (`gradebook-php`, `gradebook-py`,
//! `gradebook-wasm`) pass plain slices through [`regrade_packed`].

pub mod formula;
pub mod json;
pub mod model;
pub mod phpmath;
pub mod regrade;

pub use model::{flag, Course};
pub use regrade::{Scratch, UserGrades};

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

/// Regrade every user of a course in one call.
///
/// `cells` and `flags` are `users × items` row-major in the course's item order.  Errors are
/// reported before any computation: wrong lengths, non-finite values, unknown flag bits.
pub fn regrade_packed(course: &Course, nusers: usize, cells: &[f64], flags: &[u8]) -> Result<Regraded, String> {
    let n = course.items.len();
    let expected = nusers.checked_mul(n).ok_or("too many users")?;
    if cells.len() != expected {
        return Err(format!(
            "grades: expected {expected} values ({nusers} users x {n} items), got {}",
            cells.len()
        ));
    }
    if flags.len() != expected {
        return Err(format!(
            "flags: expected {expected} bytes ({nusers} users x {n} items), got {}",
            flags.len()
        ));
    }
    for (k, (&v, &f)) in cells.iter().zip(flags).enumerate() {
        if f & !flag::ALL != 0 {
            return Err(format!("flags: unknown bits {f:#04x} at user {} item {}", k / n.max(1), k % n.max(1)));
        }
        if f & flag::HAS_VALUE != 0 && !v.is_finite() {
            return Err(format!(
                "grades: value at user {} item {} is not a finite number ({v})",
                k / n.max(1),
                k % n.max(1)
            ));
        }
    }
    let mut out = Regraded {
        finalgrade: Vec::with_capacity(expected),
        has_value: Vec::with_capacity(expected),
        rawmin: Vec::with_capacity(expected),
        rawmax: Vec::with_capacity(expected),
    };
    let mut user = UserGrades { finalgrade: Vec::new(), rawmin: Vec::new(), rawmax: Vec::new() };
    let mut scratch = Scratch::default();
    for u in 0..nusers {
        let range = u * n..(u + 1) * n;
        course.regrade_user(&cells[range.clone()], &flags[range], &mut user, &mut scratch);
        for g in &user.finalgrade {
            out.finalgrade.push(g.unwrap_or(0.0));
            out.has_value.push(u8::from(g.is_some()));
        }
        out.rawmin.extend_from_slice(&user.rawmin);
        out.rawmax.extend_from_slice(&user.rawmax);
    }
    Ok(out)
}
