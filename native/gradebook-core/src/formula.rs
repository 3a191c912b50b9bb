//! Moodle's calculated-item formulas: a port of `lib/evalmath/evalmath.class.php` (EvalMath as
//! modified for Moodle: spreadsheet functions, comparison operators, `if`/`and`/`or` synonyms)
//! and `calc_formula` (`lib/mathslib.php`).
//!
//! Parsing follows EvalMath's infix-to-postfix algorithm token for token, including its operator
//! precedences (comparisons bind tighter than `^`, unary minus as tight as `*`).  Differences, all
//! on inputs Moodle's formula form would not save: `rand_int`/`rand_float` are rejected
//! (non-deterministic), unknown variables and functions are load-time errors, and modulo by zero
//! (a PHP `DivisionByZeroError` that aborts Moodle's regrade) gives an empty grade.

use crate::fm;
use crate::func::{builtin, builtin_func, calcfunc, Func};
use crate::msg::join;
use crate::phpmath::{php_int, php_round_with};
#[cfg(feature = "std")]
use crate::platform::rust_parse_num;
use crate::platform::{call_builtin, call_parse_num, call_pow, ParseNum, Platform, Pow};
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A postfix token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    Num(f64),
    /// Index into the parameter vector given to [`Formula::eval`].
    Var(usize),
    Bin(BinOp),
    Neg,
    Func(Func, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Gt,
    Lt,
    Le,
    Ge,
    Eq,
    Mod,
}

const OPS: [&str; 12] = ["+", "-", "*", "/", "^", "_", ">", "<", "<=", ">=", "==", "%"];

fn prec(op: &str) -> i32 {
    match op {
        "+" | "-" => 0,
        "*" | "/" | "_" | "%" => 1,
        "^" => 2,
        _ => 3,
    }
}

#[derive(Debug, Clone)]
enum Stack {
    Op(&'static str),
    Open,
    FnOpen(String),
    Count(usize),
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    pub tokens: Vec<Token>,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_lowercase()
}
fn is_name_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
}

/// Match EvalMath's operand regex at the start of `s`:
/// `namepat\(?` | `\d+(?:\.\d*)?(?:(e[+-]?)\d*)?` | `\.\d+` | `\(`.
fn operand(s: &[u8]) -> Option<usize> {
    let first = *s.first()?;
    if is_name_start(first) {
        let mut i = 1;
        while i < s.len() && is_name_char(s[i]) {
            i += 1;
        }
        if s.get(i) == Some(&b'(') {
            i += 1;
        }
        return Some(i);
    }
    if first.is_ascii_digit() {
        let mut i = 1;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
        }
        if s.get(i) == Some(&b'e') {
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
        }
        return Some(i);
    }
    if first == b'.' && s.get(1).is_some_and(u8::is_ascii_digit) {
        let mut i = 2;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        return Some(i);
    }
    if first == b'(' {
        return Some(1);
    }
    None
}

fn op_at(s: &[u8], i: usize) -> (&'static str, usize) {
    if i + 2 <= s.len() {
        if let Some(op) = OPS.iter().find(|o| o.len() == 2 && o.as_bytes() == &s[i..i + 2]) {
            return (op, 2);
        }
    }
    if i < s.len() {
        if let Some(op) = OPS.iter().find(|o| o.len() == 1 && o.as_bytes()[0] == s[i]) {
            return (op, 1);
        }
    }
    ("", 1)
}

impl Formula {
    /// Parse a formula *without* its leading `=`, variables already lowercased names; `resolve`
    /// maps a variable name to a parameter index.
    #[cfg(feature = "std")]
    pub fn parse(expr: &str, resolve: &mut impl FnMut(&str) -> Result<usize, String>) -> Result<Formula, String> {
        Self::parse_with(expr, resolve, rust_parse_num)
    }

    /// [`Formula::parse`] with the number parser of the build (see [`ParseNum`]).
    pub fn parse_with(
        expr: &str,
        resolve: &mut impl FnMut(&str) -> Result<usize, String>,
        num: ParseNum,
    ) -> Result<Formula, String> {
        let expr = expr.trim().to_ascii_lowercase();
        let s = expr.as_bytes();
        // EvalMath's character whitelist: [%\w\s+*^/().,-<>=] (the `,-<` is a range).
        if let Some(c) = expr.chars().find(|&c| {
            !(c.is_ascii_alphanumeric()
                || c == '_'
                || c.is_ascii_whitespace()
                || "%+*^/().<>=".contains(c)
                || (','..='<').contains(&c))
        }) {
            return Err(cat!("illegal character '", c, "'"));
        }
        let mut out: Vec<Token> = Vec::new();
        let mut stack: Vec<Stack> = Vec::new();
        let mut index = 0usize;
        let mut expecting_op = false;
        if s.is_empty() {
            return Err("empty formula".into());
        }
        loop {
            let (op, oplen) = op_at(s, index);
            let ex = operand(&s[index..]);
            let cur = s.get(index).copied().unwrap_or(0);
            if op == "-" && !expecting_op {
                stack.push(Stack::Op("_"));
                index += 1;
            } else if op == "_" {
                return Err("illegal character '_'".into());
            } else if (!op.is_empty() || ex.is_some()) && expecting_op && (!op.is_empty() || cur != b')' && cur != b',') {
                if ex.is_some() && op.is_empty() {
                    return Err(cat!("implicit multiplication is not allowed (at '", expr.get(index..).unwrap_or(""), "')"));
                }
                while let Some(Stack::Op(o2)) = stack.last() {
                    let pop = if op == "^" { prec(op) < prec(o2) } else { prec(op) <= prec(o2) };
                    if !pop {
                        break;
                    }
                    out.push(op_token(o2));
                    stack.pop();
                }
                stack.push(Stack::Op(op));
                index += oplen;
                expecting_op = false;
            } else if cur == b')' && expecting_op {
                loop {
                    match stack.pop() {
                        None => return Err("unexpected ')'".into()),
                        Some(Stack::Open) => break,
                        Some(Stack::Op(o)) => out.push(op_token(o)),
                        Some(_) => return Err("unexpected ')'".into()),
                    }
                }
                if let (Some(Stack::Count(_)), Some(Stack::FnOpen(_))) =
                    (stack.last(), stack.len().checked_sub(2).and_then(|i| stack.get(i)))
                {
                    let Some(Stack::Count(argc)) = stack.pop() else { unreachable!() };
                    let Some(Stack::FnOpen(name)) = stack.pop() else { unreachable!() };
                    out.push(func_token(&name, argc)?);
                }
                index += 1;
            } else if cur == b',' && expecting_op {
                loop {
                    match stack.pop() {
                        None => return Err("unexpected ','".into()),
                        Some(Stack::Open) => break,
                        Some(Stack::Op(o)) => out.push(op_token(o)),
                        Some(_) => return Err("unexpected ','".into()),
                    }
                }
                match (stack.pop(), stack.last()) {
                    (Some(Stack::Count(n)), Some(Stack::FnOpen(_))) => stack.push(Stack::Count(n + 1)),
                    _ => return Err("unexpected ','".into()),
                }
                stack.push(Stack::Open);
                index += 1;
                expecting_op = false;
            } else if cur == b'(' && !expecting_op {
                stack.push(Stack::Open);
                index += 1;
            } else if let (Some(len), false) = (ex, expecting_op) {
                expecting_op = true;
                let val = expr.get(index..index + len).unwrap_or("");
                if let Some(name) = val.strip_suffix('(') {
                    if name == "rand_int" || name == "rand_float" {
                        return Err(cat!(name, "() is not supported (its result is random)"));
                    }
                    if builtin(name).is_some() || calcfunc(name).is_some() {
                        stack.push(Stack::FnOpen(name.to_string()));
                        stack.push(Stack::Count(1));
                        stack.push(Stack::Open);
                        expecting_op = false;
                        index += len;
                    } else {
                        return Err(cat!("unknown function '", name, "'"));
                    }
                } else {
                    if is_name_start(val.as_bytes()[0]) {
                        out.push(Token::Var(resolve(val)?));
                    } else {
                        let v: f64 = call_parse_num(num, val).ok_or_else(|| cat!("invalid number '", val, "'"))?;
                        out.push(Token::Num(v));
                    }
                    index += len;
                }
            } else if cur == b')' {
                // A function called with no arguments, e.g. pi().
                let n = stack.len();
                match (n >= 3).then(|| (&stack[n - 1], &stack[n - 2], &stack[n - 3])) {
                    Some((Stack::Open, Stack::Count(1), Stack::FnOpen(name))) => {
                        let name = name.clone();
                        stack.truncate(n - 3);
                        out.push(func_token(&name, 0)?);
                        index += 1;
                        expecting_op = true;
                    }
                    _ => return Err("unexpected ')'".into()),
                }
            } else if !op.is_empty() && !expecting_op {
                return Err(cat!("unexpected operator '", op, "'"));
            } else {
                return Err(cat!("unexpected input at '", expr.get(index..).unwrap_or(""), "'"));
            }
            if index == s.len() {
                if !op.is_empty() && OPS.contains(&op) && ex.is_none() && cur != b')' {
                    return Err(cat!("operator '", op, "' lacks an operand"));
                }
                break;
            }
            while s.get(index) == Some(&b' ') {
                index += 1;
            }
            if index == s.len() {
                // EvalMath does not re-check here; trailing spaces were trimmed, so this is only
                // reachable after inner whitespace which EvalMath also rejects.
                return Err("unexpected end of formula".into());
            }
        }
        while let Some(top) = stack.pop() {
            match top {
                Stack::Open => return Err("expecting a closing bracket".into()),
                Stack::Op(o) => out.push(op_token(o)),
                _ => return Err("unbalanced function call".into()),
            }
        }
        let f = Formula { tokens: out };
        f.check_stack()?;
        Ok(f)
    }

    /// Reject token streams that could not leave exactly one value (EvalMath's "internal error").
    pub(crate) fn check_stack(&self) -> Result<(), String> {
        let mut depth: i64 = 0;
        for t in &self.tokens {
            depth += match t {
                Token::Num(_) | Token::Var(_) => 1,
                Token::Bin(_) => -1,
                Token::Neg => 0,
                Token::Func(f, n) => {
                    let n = if builtin_func(*f) { 1 } else { *n as i64 };
                    1 - n
                }
            };
            if depth < 1 {
                return Err("malformed expression".into());
            }
        }
        if depth != 1 {
            return Err("malformed expression".into());
        }
        Ok(())
    }

    /// Evaluate with the given parameter values.  `None` is EvalMath's `false` (an error such as
    /// division by zero): Moodle stores an empty grade.
    #[cfg(feature = "std")]
    pub fn eval(&self, params: &[f64], stack: &mut Vec<f64>) -> Option<f64> {
        self.eval_with(params, stack, &Platform::RUST)
    }

    /// [`Formula::eval`] with the transcendental functions of the build (see [`Platform`]).
    pub fn eval_with(&self, params: &[f64], stack: &mut Vec<f64>, platform: &Platform) -> Option<f64> {
        let builtin = platform.builtin_fn();
        stack.clear();
        for t in &self.tokens {
            match *t {
                Token::Num(v) => stack.push(v),
                Token::Var(i) => stack.push(params[i]),
                Token::Neg => {
                    let v = stack.pop()?;
                    stack.push(-v);
                }
                Token::Bin(op) => {
                    let b = stack.pop()?;
                    let a = stack.pop()?;
                    let r = match op {
                        BinOp::Add => a + b,
                        BinOp::Sub => a - b,
                        BinOp::Mul => a * b,
                        BinOp::Div => {
                            if b == 0.0 {
                                return None;
                            }
                            a / b
                        }
                        BinOp::Pow => call_pow(platform.pow_fn(), a, b),
                        BinOp::Gt => f64::from(u8::from(a > b)),
                        BinOp::Lt => f64::from(u8::from(a < b)),
                        BinOp::Le => f64::from(u8::from(a <= b)),
                        BinOp::Ge => f64::from(u8::from(a >= b)),
                        BinOp::Eq => f64::from(u8::from(a == b)),
                        BinOp::Mod => php_mod(a, b)?,
                    };
                    stack.push(r);
                }
                Token::Func(f, argc) => {
                    if builtin_func(f) {
                        let a = stack.pop()?;
                        stack.push(call_builtin(builtin, f, a));
                    } else {
                        let base = stack.len().checked_sub(argc)?;
                        let r = apply_calc(f, &stack[base..], platform.pow_fn())?;
                        stack.truncate(base);
                        stack.push(r);
                    }
                }
            }
        }
        if stack.len() != 1 {
            return None;
        }
        stack.pop()
    }
}

fn php_mod(a: f64, b: f64) -> Option<f64> {
    let (x, y) = (php_int(a), php_int(b));
    if y == 0 {
        return None;
    }
    if y == -1 {
        return Some(0.0);
    }
    Some((x % y) as f64)
}

fn apply_calc(f: Func, args: &[f64], pow: Pow) -> Option<f64> {
    Some(match f {
        Func::If => {
            if args[0] != 0.0 {
                args[1]
            } else {
                args[2]
            }
        }
        Func::And => f64::from(u8::from(!args.contains(&0.0))),
        Func::Or => f64::from(u8::from(args.iter().any(|&a| a != 0.0))),
        Func::Sum => args.iter().fold(0.0, |s, &a| s + a),
        Func::Average => args.iter().fold(0.0, |s, &a| s + a) / args.len() as f64,
        Func::Max => {
            // EvalMathFuncs::max: start from the last argument, scan the others in order.
            let (last, rest) = args.split_last()?;
            let mut res = *last;
            for &a in rest {
                if res < a {
                    res = a;
                }
            }
            res
        }
        Func::Min => {
            let (last, rest) = args.split_last()?;
            let mut res = *last;
            for &a in rest {
                if res > a {
                    res = a;
                }
            }
            res
        }
        Func::ModF => php_mod(args[0], args[1])?,
        Func::Pi => core::f64::consts::PI,
        Func::Power => call_pow(pow, args[0], args[1]),
        Func::Round => {
            let places = match args.get(1) {
                None => 0,
                Some(p) if p.is_finite() && fm::abs(*p) < 9.2e18 => fm::trunc(*p) as i64,
                Some(_) => return None, // PHP TypeError for a non-finite precision
            };
            php_round_with(args[0], places, pow)
        }
        _ => return None,
    })
}

fn op_token(op: &str) -> Token {
    match op {
        "+" => Token::Bin(BinOp::Add),
        "-" => Token::Bin(BinOp::Sub),
        "*" => Token::Bin(BinOp::Mul),
        "/" => Token::Bin(BinOp::Div),
        "^" => Token::Bin(BinOp::Pow),
        ">" => Token::Bin(BinOp::Gt),
        "<" => Token::Bin(BinOp::Lt),
        "<=" => Token::Bin(BinOp::Le),
        ">=" => Token::Bin(BinOp::Ge),
        "==" => Token::Bin(BinOp::Eq),
        "%" => Token::Bin(BinOp::Mod),
        _ => Token::Neg,
    }
}

fn func_token(name: &str, argc: usize) -> Result<Token, String> {
    if let Some(f) = builtin(name) {
        if argc != 1 {
            return Err(cat!("wrong number of arguments for ", name, "(): expected 1, given ", argc));
        }
        return Ok(Token::Func(f, 1));
    }
    if name == "rand_int" || name == "rand_float" {
        return Err(cat!(name, "() is not supported (its result is random)"));
    }
    let (f, counts) = calcfunc(name).ok_or_else(|| cat!("unknown function '", name, "'"))?;
    let ok = if counts.contains(&-1) { argc > 0 } else { counts.contains(&(argc as i32)) };
    if !ok {
        let expected: Vec<String> = counts.iter().map(|c| if *c < 0 { "1+".into() } else { cat!(*c) }).collect();
        return Err(cat!(
            "wrong number of arguments for ",
            name,
            "(): expected ",
            join(&expected, "/"),
            ", given ",
            argc
        ));
    }
    Ok(Token::Func(f, argc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn eval(src: &str, vars: &[(&str, f64)]) -> Option<f64> {
        let names: Vec<&str> = vars.iter().map(|v| v.0).collect();
        let f = Formula::parse(src, &mut |n| {
            names.iter().position(|x| *x == n).ok_or_else(|| format!("unknown variable {n}"))
        })
        .unwrap();
        let params: Vec<f64> = vars.iter().map(|v| v.1).collect();
        f.eval(&params, &mut Vec::new())
    }

    #[test]
    fn evalmath_precedence_quirks() {
        // Comparisons bind tighter than + and ^ in EvalMath.
        assert_eq!(eval("1+2>1", &[]), Some(2.0));
        assert_eq!(eval("-2^2", &[]), Some(-4.0));
        assert_eq!(eval("2^3^2", &[]), Some(512.0));
        assert_eq!(eval("10-4-3", &[]), Some(3.0));
        assert_eq!(eval("7%3*2", &[]), Some(2.0));
    }

    #[test]
    fn functions() {
        assert_eq!(eval("average(gi1, gi2, 3)", &[("gi1", 1.0), ("gi2", 2.0)]), Some(2.0));
        assert_eq!(eval("max(1,5,3)", &[]), Some(5.0));
        assert_eq!(eval("min(4,2,3)", &[]), Some(2.0));
        assert_eq!(eval("if(gi1>=50, 1, 0)", &[("gi1", 50.0)]), Some(1.0));
        assert_eq!(eval("and(1, 0)", &[]), Some(0.0));
        assert_eq!(eval("or(0, 2)", &[]), Some(1.0));
        assert_eq!(eval("round(2.345, 2)", &[]), Some(2.35));
        assert_eq!(eval("pi()", &[]), Some(std::f64::consts::PI));
        assert_eq!(eval("mod(7.9, 2)", &[]), Some(1.0));
        assert_eq!(eval("1/0", &[]), None);
        assert_eq!(eval("mod(1, 0)", &[]), None);
    }

    #[test]
    fn syntax_errors_are_reported() {
        let mut r = |_: &str| Ok(0usize);
        assert!(Formula::parse("1 +", &mut r).is_err());
        assert!(Formula::parse("foo(1)", &mut r).unwrap_err().contains("unknown function"));
        assert!(Formula::parse("(1", &mut r).is_err());
        assert!(Formula::parse("1)", &mut r).is_err());
        assert!(Formula::parse("2 3", &mut r).is_err());
        assert!(Formula::parse("round(1,2,3)", &mut r).is_err());
        assert!(Formula::parse("rand_int(1,2)", &mut r).is_err());
        assert!(Formula::parse("sqrt()", &mut r).is_err());
        assert!(Formula::parse("1 $ 2", &mut r).is_err());
    }
}
