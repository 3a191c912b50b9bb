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
use gradebook_core::{regrade_each, Course, LeBytes};

/// Bad input: `InvalidArgumentException` (what the pure-PHP engine throws too).
fn bad_input(message: String) -> PhpException {
    let class = ClassEntry::try_find("InvalidArgumentException").unwrap_or_else(ce::exception);
    PhpException::new(message, 0, class)
}

fn parse_course(func: &str, course: &str, grades: &[u8], nusers: i64) -> PhpResult<Course> {
    if nusers < 0 {
        return Err(bad_input(format!("{func}: nusers must not be negative, got {nusers}")));
    }
    let course = Course::from_json(course).map_err(|e| bad_input(format!("{func}: {e}")))?;
    if !grades.len().is_multiple_of(8) {
        return Err(bad_input(format!(
            "{func}: grades: {} bytes is not a whole number of pack('e*') doubles",
            grades.len()
        )));
    }
    Ok(course)
}

/// Regrade every user of a course.  Returns `['final' => e*, 'hasvalue' => bytes,
/// 'rawmin' => e*, 'rawmax' => e*]`, each `users x items` row-major.
/// Throws `InvalidArgumentException` with a clear message on bad input (never crashes).
#[php_function]
pub fn moodle_gradebook_regrade(
    course: &str,
    grades: BinarySlice<u8>,
    flags: BinarySlice<u8>,
    nusers: i64,
) -> PhpResult<ZBox<ZendHashTable>> {
    const F: &str = "moodle_gradebook_regrade";
    let course = parse_course(F, course, &grades, nusers)?;
    let cells = LeBytes(&grades);
    // The grades are read in place and the results written straight into the bytes PHP gets.
    // Sized by the flags PHP already holds (regrade_each checks nusers against them).
    let size = flags.len();
    let (mut fin, mut has) = (Vec::with_capacity(size * 8), Vec::with_capacity(size));
    let (mut rmin, mut rmax) = (Vec::with_capacity(size * 8), Vec::with_capacity(size * 8));
    regrade_each(&course, nusers as usize, &cells, &flags, |_, user| {
        for g in &user.finalgrade {
            fin.extend_from_slice(&g.unwrap_or(0.0).to_le_bytes());
            has.push(u8::from(g.is_some()));
        }
        for (a, b) in user.rawmin.iter().zip(&user.rawmax) {
            rmin.extend_from_slice(&a.to_le_bytes());
            rmax.extend_from_slice(&b.to_le_bytes());
        }
    })
    .map_err(|e| bad_input(format!("{F}: {e}")))?;
    let mut ht = ZendHashTable::with_capacity(4);
    ht.insert("final", Binary::from(fin))?;
    ht.insert("hasvalue", Binary::from(has))?;
    ht.insert("rawmin", Binary::from(rmin))?;
    ht.insert("rawmax", Binary::from(rmax))?;
    Ok(ht)
}

/// Regrade every user and return the final grades as PHP arrays: `[user => [item => ?float]]`
/// (what `engine::finals()` makes of `moodle_gradebook_regrade()`), built here rather than
/// unpacked in PHP.  Same input and errors as `moodle_gradebook_regrade()`.
#[php_function]
pub fn moodle_gradebook_regrade_rows(
    course: &str,
    grades: BinarySlice<u8>,
    flags: BinarySlice<u8>,
    nusers: i64,
) -> PhpResult<ZBox<ZendHashTable>> {
    const F: &str = "moodle_gradebook_regrade_rows";
    let course = parse_course(F, course, &grades, nusers)?;
    let cells = LeBytes(&grades);
    let n = u32::try_from(course.items.len()).unwrap_or(u32::MAX);
    // No capacity from nusers: it is validated inside regrade_each().
    let mut users = ZendHashTable::new();
    let mut failed = None;
    regrade_each(&course, nusers as usize, &cells, &flags, |_, user| {
        let mut row = ZendHashTable::with_capacity(n);
        for g in &user.finalgrade {
            if let Err(e) = row.push(*g) {
                failed = Some(e);
            }
        }
        if let Err(e) = users.push(row) {
            failed = Some(e);
        }
    })
    .map_err(|e| bad_input(format!("{F}: {e}")))?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(users),
    }
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
        .function(wrap_function!(moodle_gradebook_regrade_rows))
        .function(wrap_function!(moodle_gradebook_validate))
        .function(wrap_function!(moodle_gradebook_version))
}
