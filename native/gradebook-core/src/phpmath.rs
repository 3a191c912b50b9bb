//! PHP and database numeric behaviour that Moodle's results depend on.
//!
//! * [`php_round`] is PHP 8.2's `round()` (`_php_math_round`, with its "pre-rounding" step); the
//!   formula function `round()` and scale grades use it.
//! * [`db_decimal5`] is what a Moodle `DECIMAL(10,5)` column holds after PHP writes a float into it:
//!   PHP turns the float into a string with `precision=14` significant digits, the database then
//!   rounds that decimal string half away from zero to 5 decimals.  Every final grade, raw range and
//!   recomputed natural weight/maximum goes through the database between regrade steps, so the core
//!   applies this at the same places.
//! * [`php_string14`] is the value of `(string)$float` read back as a number (used by the mode).

/// `10^power` as PHP's `php_intpow10` computes it.
fn intpow10(power: i32) -> f64 {
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    if !(0..=22).contains(&power) {
        return 10f64.powf(f64::from(power));
    }
    POWERS[power as usize]
}

/// PHP_ROUND_HALF_UP helper.
fn round_helper(value: f64) -> f64 {
    if value >= 0.0 {
        (value + 0.5).floor()
    } else {
        (value - 0.5).ceil()
    }
}

fn round_get_basic(value: f64, places: i32) -> f64 {
    let f1 = intpow10(places.abs());
    if places >= 0 {
        value * f1
    } else {
        value / f1
    }
}

/// PHP 8.2 `round($value, $places)` (mode PHP_ROUND_HALF_UP).
pub fn php_round(value: f64, places: i64) -> f64 {
    if !value.is_finite() || value == 0.0 {
        return value;
    }
    let places = places.clamp(i64::from(i32::MIN) + 1, i64::from(i32::MAX)) as i32;
    let precision_places = 14 - value.abs().log10().floor() as i32;
    let f1 = intpow10(places.abs());
    let mut tmp;
    if precision_places > places && precision_places - 15 < places {
        let use_precision = precision_places.max(-(4 * 15));
        // Pre-round to the precision the double can hold, then move the decimal point.
        tmp = round_helper(round_get_basic(value, use_precision));
        let shift = (places - use_precision).max(-(4 * 15));
        tmp /= intpow10(shift.abs());
    } else {
        tmp = if places >= 0 { value * f1 } else { value / f1 };
        if tmp.abs() >= 1e15 {
            return value;
        }
    }
    tmp = round_helper(tmp);
    if places.abs() < 23 {
        if places > 0 {
            tmp /= f1;
        } else {
            tmp *= f1;
        }
    } else {
        let s = format!("{tmp:.15}e{}", -places);
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => tmp = v,
            _ => return value,
        }
    }
    tmp
}

/// Digits of `(string)$value` under PHP's default `precision=14`: (negative, 14 digits, exponent)
/// with `|value| = digits * 10^(exponent - 13)`.  General (slow) path through core's formatter.
fn sig14_fmt(value: f64) -> (bool, u64, i32) {
    let s = format!("{:.13e}", value.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: u64 = mant.replace('.', "").parse().unwrap_or(0);
    (value < 0.0, digits, exp.parse().unwrap_or(0))
}

const POW10: [u128; 24] = {
    let mut t = [1u128; 24];
    let mut i = 1;
    while i < 24 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 14 significant digits of `v` (1e-6 <= v < 1e15), correctly rounded (ties to even, like
/// zend_dtoa), with exact integer arithmetic: returns (digits, k) with `v ~= digits * 10^-k`.
/// This is the hot path of every stored value, so it avoids the float formatter.
fn sig14_fast(v: f64) -> (u64, i32) {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let m = u128::from((bits & ((1u64 << 52) - 1)) | (1u64 << 52));
    let s = (1075 - exp) as u32; // v = m / 2^s, s >= 3 for v < 2^50
    let mut k = 13 - v.log10().floor() as i32;
    loop {
        // digits = round(m * 10^k / 2^s)
        let (num, den) = if k >= 0 {
            (m * POW10[k as usize], 1u128 << s)
        } else {
            (m, (1u128 << s) * POW10[(-k) as usize])
        };
        let q = num / den;
        let r = num - q * den;
        let q = match (2 * r).cmp(&den) {
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
            std::cmp::Ordering::Less => q,
        };
        if q < POW10[13] {
            k += 1;
        } else if q >= POW10[14] {
            if q == POW10[14] && r != 0 {
                return (POW10[13] as u64, k - 1);
            }
            k -= 1;
        } else {
            return (q as u64, k);
        }
    }
}

/// `(float)(string)$value` with PHP's default `precision=14`.
pub fn php_string14(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let a = value.abs();
    if (1e-6..1e15).contains(&a) {
        let (digits, k) = sig14_fast(a);
        // digits < 2^53 and 10^k exact for |k| <= 22: one correctly rounded operation.
        let r = if k >= 0 { digits as f64 / POW10[k as usize] as f64 } else { digits as f64 * POW10[(-k) as usize] as f64 };
        return if value < 0.0 { -r } else { r };
    }
    format!("{:.13e}", value).parse().unwrap_or(value)
}

/// The value a `DECIMAL(10,5)` column returns after PHP stored `value` into it.
#[inline]
pub fn db_decimal5(value: f64) -> f64 {
    // Fast path: below 1e5 the 14-digit string keeps at least 9 decimals, so unless value*1e5 is
    // within 1e-3 of a .5 boundary (far more than the f64 error of the product, ~1e-6), both
    // roundings agree with rounding value*1e5 directly.
    let t = value * 100_000.0;
    if value.abs() < 1e5 {
        // |t| < 1e10: the integer conversion truncates exactly (and, unlike f64::trunc/round,
        // needs no libm call on baseline x86-64).
        let ti = t as i64;
        let frac = (t - ti as f64).abs();
        if (frac - 0.5).abs() > 1e-3 {
            let n = if frac < 0.5 {
                ti
            } else if t < 0.0 {
                ti - 1
            } else {
                ti + 1
            };
            return if n == 0 { 0.0 } else { n as f64 / 100_000.0 };
        }
    }
    db_decimal5_exact(value)
}

/// [`db_decimal5`] by exact integer arithmetic on the 14 significant digits.
pub fn db_decimal5_exact(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return if value.is_finite() { 0.0 } else { value };
    }
    let a = value.abs();
    if a < 1e-6 {
        // Below 0.000005 even after rounding to 14 digits: the column holds 0.
        return 0.0;
    }
    let (neg, digits, k) = if a < 1e15 {
        let (d, k) = sig14_fast(a);
        (value < 0.0, d, k)
    } else {
        let (neg, d, e) = sig14_fmt(value);
        (neg, d, 13 - e)
    };
    // value = digits * 10^-k; we want round_half_up(value * 10^5) = digits * 10^(5-k).
    let shift = 5 - k;
    let scaled: u128 = if shift >= 0 {
        u128::from(digits) * 10u128.pow(shift.min(20) as u32)
    } else {
        let p = (-shift) as u32;
        if p > 30 {
            0
        } else {
            let p = 10u128.pow(p);
            (u128::from(digits) + p / 2) / p
        }
    };
    if scaled == 0 {
        return 0.0; // a DECIMAL column has no negative zero
    }
    let v = scaled as f64 / 100_000.0;
    if neg {
        -v
    } else {
        v
    }
}

/// PHP's `(int)$float` on a 64-bit build (modular for out-of-range, 0 for NaN/Inf).
pub fn php_int(value: f64) -> i64 {
    if !value.is_finite() {
        return 0;
    }
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO63..TWO63).contains(&value) {
        return value.trunc() as i64;
    }
    // zend_dval_to_lval_slow: modular arithmetic.
    let two64 = 2.0 * TWO63;
    let mut dmod = value.trunc() % two64;
    if dmod < 0.0 {
        // we are going to make this number positive; call ourselves recursively
        // if the result is -zend_long_min, which can't be represented as positive
        dmod += two64;
    }
    if dmod >= TWO63 {
        dmod -= two64;
    }
    dmod as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal5_rounds_the_14_digit_string_half_up() {
        assert_eq!(db_decimal5(83.333_333_333_333_33), 83.33333);
        assert_eq!(db_decimal5(0.123_455), 0.12346);
        assert_eq!(db_decimal5(-0.123_455), -0.12346);
        // 14 significant digits round first: 0.1234549999999999 -> "0.12345500000000" -> 0.12346
        assert_eq!(db_decimal5(0.123_454_999_999_999_9), 0.12346);
        assert_eq!(db_decimal5(0.000_004_9), 0.0);
        assert_eq!(db_decimal5(0.000_005), 0.00001);
        assert_eq!(db_decimal5(12_345.678_9), 12_345.678_9);
    }

    #[test]
    fn php_round_matches_known_php82_results() {
        assert_eq!(php_round(0.285, 2), 0.29);
        assert_eq!(php_round(1.955, 2), 1.96);
        assert_eq!(php_round(5.045, 2), 5.05);
        assert_eq!(php_round(5.055, 2), 5.06);
        assert_eq!(php_round(0.499_999_999_999_999_94, 0), 1.0);
        assert_eq!(php_round(-2.5, 0), -3.0);
        assert_eq!(php_round(1234.5678, -2), 1200.0);
    }

    #[test]
    fn fast_14_digits_equal_the_formatter() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            let a = v.abs();
            let a = if (1e-6..1e15).contains(&a) { a } else { (x % 1_000_000_000) as f64 / 1000.0 + 1e-6 };
            let (d, k) = sig14_fast(a);
            let (_, d2, e) = sig14_fmt(a);
            assert_eq!((d, k), (d2, 13 - e), "{a:e}");
        }
    }

    #[test]
    fn decimal5_fast_path_equals_exact() {
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        for i in 0..400_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => (x % 10_000_000_000) as f64 / 100_000.0 - 50_000.0,
                1 => (x % 200_000_000) as f64 / 1_000_000.0 + 5e-6 * ((x >> 40) % 3) as f64,
                2 => f64::from_bits(x) % 1e5,
                _ => (x % 1_000_000) as f64 / 7.0,
            };
            if v.is_finite() {
                assert_eq!(db_decimal5(v).to_bits(), db_decimal5_exact(v).to_bits(), "{v:e}");
            }
        }
    }

    #[test]
    fn php_int_truncates_and_wraps() {
        assert_eq!(php_int(7.9), 7);
        assert_eq!(php_int(-7.9), -7);
        assert_eq!(php_int(f64::NAN), 0);
        assert_eq!(php_int(1e19), 1e19 as u64 as i64);
    }
}
