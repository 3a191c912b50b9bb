//! The functions of Moodle's formula language (EvalMath's one-argument functions and the
//! calc-emulation functions of `lib/mathslib.php`): their names and arities.
//!
//! A leaf module: the formula parser ([`crate::formula`]), the platform hooks
//! ([`crate::platform`], which supply the one-argument ones) and the compiled course
//! ([`crate::compiled`], which numbers them in this order) all name functions with [`Func`].

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sin,
    Sinh,
    Asin,
    Asinh,
    Cos,
    Cosh,
    Acos,
    Acosh,
    Tan,
    Tanh,
    Atan,
    Atanh,
    Sqrt,
    Abs,
    Ln,
    Exp,
    Floor,
    Ceil,
    Average,
    Max,
    Min,
    ModF,
    Pi,
    Power,
    Round,
    Sum,
    If,
    And,
    Or,
}

/// EvalMath's one-argument function called `name`.
pub(crate) fn builtin(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "sinh" => Func::Sinh,
        "arcsin" | "asin" => Func::Asin,
        "arcsinh" | "asinh" => Func::Asinh,
        "cos" => Func::Cos,
        "cosh" => Func::Cosh,
        "arccos" | "acos" => Func::Acos,
        "arccosh" | "acosh" => Func::Acosh,
        "tan" => Func::Tan,
        "tanh" => Func::Tanh,
        "arctan" | "atan" => Func::Atan,
        "arctanh" | "atanh" => Func::Atanh,
        "sqrt" => Func::Sqrt,
        "abs" => Func::Abs,
        "ln" | "log" => Func::Ln,
        "exp" => Func::Exp,
        "floor" => Func::Floor,
        "ceil" => Func::Ceil,
        _ => return None,
    })
}

/// Calc-emulation functions with their allowed argument counts (-1: any number ≥ 1).
pub(crate) fn calcfunc(name: &str) -> Option<(Func, &'static [i32])> {
    Some(match name {
        "average" => (Func::Average, &[-1]),
        "max" => (Func::Max, &[-1]),
        "min" => (Func::Min, &[-1]),
        "mod" => (Func::ModF, &[2]),
        "pi" => (Func::Pi, &[0]),
        "power" => (Func::Power, &[2]),
        "round" => (Func::Round, &[1, 2]),
        "sum" => (Func::Sum, &[-1]),
        "ifthenelse" | "if" => (Func::If, &[3]),
        "cond_and" | "and" => (Func::And, &[-1]),
        "cond_or" | "or" => (Func::Or, &[-1]),
        _ => return None,
    })
}

/// Whether `f` takes `argc` arguments (what the formula parser accepts).
pub(crate) fn arity_ok(f: Func, argc: usize) -> bool {
    match f {
        Func::Average | Func::Max | Func::Min | Func::Sum | Func::And | Func::Or => argc > 0,
        Func::ModF | Func::Power => argc == 2,
        Func::Pi => argc == 0,
        Func::Round => argc == 1 || argc == 2,
        Func::If => argc == 3,
        _ => argc == 1,
    }
}

/// One of EvalMath's one-argument functions (supplied by the platform, see
/// [`crate::platform::Builtin`]), as opposed to a calc-emulation function.
pub(crate) fn builtin_func(f: Func) -> bool {
    matches!(
        f,
        Func::Sin
            | Func::Sinh
            | Func::Asin
            | Func::Asinh
            | Func::Cos
            | Func::Cosh
            | Func::Acos
            | Func::Acosh
            | Func::Tan
            | Func::Tanh
            | Func::Atan
            | Func::Atanh
            | Func::Sqrt
            | Func::Abs
            | Func::Ln
            | Func::Exp
            | Func::Floor
            | Func::Ceil
    )
}
