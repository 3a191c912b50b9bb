//! Error messages built from pieces without `core::fmt`.
//!
//! `format!` pulls the formatting machinery (~10 KB) into the browser bundle; the messages only
//! need text, integers and characters, so [`cat!`](crate::cat) appends those directly.  The output
//! is exactly what `format!` with `{}` gives (tested below).

#[doc(hidden)]
pub use alloc::string::String;

/// Something that can be appended to a message.
pub trait Piece {
    fn put(&self, out: &mut String);
}

impl Piece for str {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for String {
    fn put(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl Piece for char {
    fn put(&self, out: &mut String) {
        out.push(*self);
    }
}

impl<T: Piece + ?Sized> Piece for &T {
    fn put(&self, out: &mut String) {
        (**self).put(out);
    }
}

fn put_u64(mut v: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &b in buf.get(k..).unwrap_or(&[]) {
        out.push(char::from(b));
    }
}

macro_rules! unsigned {
    ($($t:ty)*) => {$(
        impl Piece for $t {
            fn put(&self, out: &mut String) {
                put_u64(*self as u64, out);
            }
        }
    )*};
}
macro_rules! signed {
    ($($t:ty)*) => {$(
        impl Piece for $t {
            fn put(&self, out: &mut String) {
                if *self < 0 {
                    out.push('-');
                }
                put_u64(self.unsigned_abs() as u64, out);
            }
        }
    )*};
}
unsigned!(u8 u32 u64 usize);
signed!(i32 i64);

/// `format!("{v:#04x}")` for a byte: `0x` and two lowercase hex digits.
#[derive(Debug, Clone, Copy)]
pub struct Hex2(pub u8);

impl Piece for Hex2 {
    fn put(&self, out: &mut String) {
        out.push_str("0x");
        for d in [self.0 >> 4, self.0 & 15] {
            out.push(char::from(b"0123456789abcdef"[usize::from(d)]));
        }
    }
}

/// Concatenate message pieces (`&str`, `String`, `char`, integers, [`Hex2`]) into a `String`.
#[macro_export]
#[doc(hidden)]
macro_rules! cat {
    ($($p:expr),* $(,)?) => {{
        let mut s = $crate::msg::String::new();
        $( $crate::msg::Piece::put(&$p, &mut s); )*
        s
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn pieces_equal_format() {
        for v in [0i64, 7, -7, 10, 1_000_000_000_000, i64::MIN, i64::MAX, -1] {
            assert_eq!(cat!(v), format!("{v}"));
        }
        for v in [0usize, 9, 10, 99, 100, usize::MAX] {
            assert_eq!(cat!(v), format!("{v}"));
        }
        for v in [i32::MIN, -13, 0, 13, i32::MAX] {
            assert_eq!(cat!(v), format!("{v}"));
        }
        for v in 0..=255u8 {
            assert_eq!(cat!(v, ' ', Hex2(v)), format!("{v} {v:#04x}"));
        }
        let s = String::from("é");
        assert_eq!(cat!("a", s, 'x', &s, u64::MAX), format!("a{s}x{s}{}", u64::MAX));
    }
}
