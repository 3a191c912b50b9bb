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

/// `[a, b].join(sep)` without `alloc::str::join` (code size in the browser bundle).
pub fn join(parts: &[String], sep: &str) -> String {
    let mut out = String::new();
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            out.push_str(sep);
        }
        out.push_str(p);
    }
    out
}

/// A string quoted like `{:?}` shows it (escapes for quotes, backslashes and control
/// characters), without the Debug formatter and its Unicode tables in the browser bundle.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str("\\u{");
                let v = c as u32;
                for shift in [4u32, 0] {
                    let d = (v >> shift) & 0xf;
                    if shift == 0 || v >= 16 {
                        out.push(char::from(b"0123456789abcdef"[d as usize]));
                    }
                }
                out.push('}');
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

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

    #[test]
    fn quote_and_join_equal_the_std_versions() {
        let mut all = String::from("=[[a]]+\"b\\c\"\n\r\t\0 é x");
        all.extend((0u8..0x80).map(char::from));
        for s in [all.as_str(), "", "=[[a]]*2", "\u{1b}\u{7f}"] {
            assert_eq!(quote(s), format!("{s:?}"));
        }
        let parts = alloc::vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(join(&parts, " -> "), parts.join(" -> "));
        assert_eq!(join(&[], "/"), "");
    }
}
