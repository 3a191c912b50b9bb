//! `moodle_gradebook` PHP extension: a thin ext-php-rs layer over `gradebook-core`.
//!
//! Bulk API only: the grade matrix travels as packed strings (`pack('e*', ...)` for values, one
//! byte per cell for flags) and the whole course is regraded per call, because converting PHP
//! arrays element by element costs more than the regrade itself.
//!
//! ```php
//! $r = moodle_gradebook_regrade($coursejson, pack('e*', ...$cells), $flags, $nusers);
//! $final = unpack('e*', $r['final']);   // users x items, row-major
//! ```
#![cfg_attr(windows, feature(abi_vectorcall))]

use ext_php_rs::binary::Binary;
use ext_php_rs::binary_slice::BinarySlice;
use ext_php_rs::exception::PhpException;
use ext_php_rs::prelude::*;
use ext_php_rs::boxed::ZBox;
use ext_php_rs::types::ZendHashTable;
use ext_php_rs::zend::{ce, ClassEntry};
use gradebook_core::{regrade_packed, Course};

/// Bad input: `InvalidArgumentException` (what the pure-PHP engine throws too).
fn bad_input(message: String) -> PhpException {
    let class = ClassEntry::try_find("InvalidArgumentException").unwrap_or_else(ce::exception);
    PhpException::new(message, 0, class)
}

/// Regrade every user of a course.  Returns `['final' => e*, 'hasvalue' => bytes,
/// 'rawmin' => e*, 'rawmax' => e*]`, each `users x items` row-major.
/// Throws `Exception` with a clear message on bad input (never crashes).
#[php_function]
pub fn moodle_gradebook_regrade(
    course: &str,
    grades: BinarySlice<u8>,
    flags: BinarySlice<u8>,
    nusers: i64,
) -> PhpResult<ZBox<ZendHashTable>> {
    if nusers < 0 {
        return Err(bad_input(format!("moodle_gradebook_regrade: nusers must not be negative, got {nusers}")));
    }
    let course = Course::from_json(course).map_err(|e| bad_input(format!("moodle_gradebook_regrade: {e}")))?;
    if !grades.len().is_multiple_of(8) {
        return Err(bad_input(format!(
            "moodle_gradebook_regrade: grades: {} bytes is not a whole number of pack('e*') doubles",
            grades.len()
        )));
    }
    // One copy into aligned f64s: cheaper than any per-element zval conversion.
    let cells: Vec<f64> = grades
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let r = regrade_packed(&course, nusers as usize, &cells, &flags)
        .map_err(|e| bad_input(format!("moodle_gradebook_regrade: {e}")))?;
    let mut ht = ZendHashTable::new();
    ht.insert("final", r.finalgrade.into_iter().collect::<Binary<f64>>())?;
    ht.insert("hasvalue", r.has_value.into_iter().collect::<Binary<u8>>())?;
    ht.insert("rawmin", r.rawmin.into_iter().collect::<Binary<f64>>())?;
    ht.insert("rawmax", r.rawmax.into_iter().collect::<Binary<f64>>())?;
    Ok(ht)
}

/// Validate a course description (formulas, cycles, references); throws on error.
#[php_function]
pub fn moodle_gradebook_validate(course: &str) -> PhpResult<i64> {
    let c = Course::from_json(course).map_err(|e| bad_input(format!("moodle_gradebook_validate: {e}")))?;
    Ok(c.items.len() as i64)
}

/// Version of the extension (the crate version).
#[php_function]
pub fn moodle_gradebook_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[php_module]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    // The name `php -m` lists (the crate is called gradebook-php).
    module
        .name("moodle_gradebook")
        .function(wrap_function!(moodle_gradebook_regrade))
        .function(wrap_function!(moodle_gradebook_validate))
        .function(wrap_function!(moodle_gradebook_version))
}
