//! The compiled course: a [`Course`] after loading (formulas parsed to postfix tokens, dependency
//! order, Natural weights and maxima computed) as a flat list of doubles.
//!
//! The widget's web service sends this instead of the course JSON, so the browser bundle carries
//! only the regrade, not the JSON reader, the formula parser or the load-time computations.  The
//! server writes it from the same state its own regrade uses (`Course::to_compiled` here, the
//! pure-PHP engine's `compile()` in the plugin; the parity tests require both to be identical
//! byte for byte, and a regrade of the read-back course to equal the original's).
//!
//! Layout (integers are exact doubles, `-1` is "none"):
//!
//! ```text
//! VERSION nitems ncats maxcoef minmax_from_grade
//! per item:     itemtype gradetype grademin grademax multfactor plusfactor aggregationcoef
//!               aggregationcoef2 weightoverride rawgrademin rawgrademax givenmin givenmax parent
//!               own_category rawdefaultmin rawdefaultmax id ndeps   (ndeps = -1: no formula)
//!               [deps x ndeps, ntokens, tokens x (kind a b)]
//! per category: parent aggregation aggregateonlygraded droplow keephigh stored.aggregation
//!               stored.droplow stored.keephigh stored.can_apply_limit_rules item depth
//!               can_apply_limit_rules id nchildren children... ndeps deps...
//! norder order...
//! ```
//!
//! itemtype: 0 mod, 1 manual, 2 category, 3 course.  Tokens: `0 value 0` number, `1 index 0`
//! variable, `2 op 0` binary operator (+ - * / ^ > < <= >= == % as 0..10), `3 0 0` negation,
//! `4 function argc` (functions numbered as [`Func`] lists them).

use crate::formula::{BinOp, Formula, Token};
use crate::func::{arity_ok, Func};
use crate::model::{aggregation, Category, Course, Item, ItemType, Stored};
use crate::platform::Platform;
use alloc::string::String;
use alloc::vec::Vec;

/// Format version (the first value).
pub const VERSION: f64 = 2.0;

const BINOPS: [BinOp; 11] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Pow,
    BinOp::Gt,
    BinOp::Lt,
    BinOp::Le,
    BinOp::Ge,
    BinOp::Eq,
    BinOp::Mod,
];

const FUNCS: [Func; 29] = [
    Func::Sin,
    Func::Sinh,
    Func::Asin,
    Func::Asinh,
    Func::Cos,
    Func::Cosh,
    Func::Acos,
    Func::Acosh,
    Func::Tan,
    Func::Tanh,
    Func::Atan,
    Func::Atanh,
    Func::Sqrt,
    Func::Abs,
    Func::Ln,
    Func::Exp,
    Func::Floor,
    Func::Ceil,
    Func::Average,
    Func::Max,
    Func::Min,
    Func::ModF,
    Func::Pi,
    Func::Power,
    Func::Round,
    Func::Sum,
    Func::If,
    Func::And,
    Func::Or,
];

const ITEMTYPES: [ItemType; 4] = [ItemType::Mod, ItemType::Manual, ItemType::Category, ItemType::Course];

fn index_of<T: PartialEq>(list: &[T], x: &T) -> f64 {
    list.iter().position(|y| y == x).map_or(-1.0, |p| p as f64)
}

fn opt(v: Option<usize>) -> f64 {
    v.map_or(-1.0, |x| x as f64)
}

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

impl Course {
    /// The compiled form of this course (see the module documentation).
    pub fn to_compiled(&self) -> Vec<f64> {
        let mut o = Vec::new();
        o.extend([VERSION, self.items.len() as f64, self.categories.len() as f64, self.maxcoef, flag(self.minmax_from_grade)]);
        for (i, it) in self.items.iter().enumerate() {
            o.extend([
                index_of(&ITEMTYPES, &it.itemtype),
                f64::from(it.gradetype),
                it.grademin,
                it.grademax,
                it.multfactor,
                it.plusfactor,
                it.aggregationcoef,
                it.aggregationcoef2,
                flag(it.weightoverride),
                it.rawgrademin,
                it.rawgrademax,
                it.given_range.0,
                it.given_range.1,
                opt(it.parent),
                opt(it.own_category),
                self.raw_defaults.0[i],
                self.raw_defaults.1[i],
                it.id as f64,
            ]);
            match &it.formula {
                None => o.push(-1.0),
                Some((f, deps)) => {
                    o.push(deps.len() as f64);
                    o.extend(deps.iter().map(|&d| d as f64));
                    o.push(f.tokens.len() as f64);
                    for t in &f.tokens {
                        o.extend(match t {
                            Token::Num(v) => [0.0, *v, 0.0],
                            Token::Var(k) => [1.0, *k as f64, 0.0],
                            Token::Bin(b) => [2.0, index_of(&BINOPS, b), 0.0],
                            Token::Neg => [3.0, 0.0, 0.0],
                            Token::Func(f, n) => [4.0, index_of(&FUNCS, f), *n as f64],
                        });
                    }
                }
            }
        }
        for c in &self.categories {
            o.extend([
                opt(c.parent),
                f64::from(c.aggregation),
                flag(c.aggregateonlygraded),
                c.droplow as f64,
                c.keephigh as f64,
                f64::from(c.stored.aggregation),
                c.stored.droplow as f64,
                c.stored.keephigh as f64,
                flag(c.stored.can_apply_limit_rules),
                c.item as f64,
                c.depth as f64,
                flag(c.can_apply_limit_rules),
                c.id as f64,
                c.children.len() as f64,
            ]);
            o.extend(c.children.iter().map(|&x| x as f64));
            o.push(c.deps.len() as f64);
            o.extend(c.deps.iter().map(|&x| x as f64));
        }
        o.push(self.order.len() as f64);
        o.extend(self.order.iter().map(|&x| x as f64));
        o
    }

    /// Read a compiled course back; every count, index and code is checked, so malformed input is
    /// an error, never a wrong index.
    pub fn from_compiled(data: &[f64], platform: Platform) -> Result<Course, String> {
        read(&mut Reader { d: data, i: 0 }, platform).ok_or_else(|| "compiled course: malformed data".into())
    }
}

struct Reader<'a> {
    d: &'a [f64],
    i: usize,
}

impl Reader<'_> {
    fn num(&mut self) -> Option<f64> {
        let v = *self.d.get(self.i)?;
        self.i += 1;
        v.is_finite().then_some(v)
    }
    /// A whole number in `lo..=hi`.
    fn int(&mut self, lo: f64, hi: f64) -> Option<i64> {
        let v = self.num()?;
        (v >= lo && v <= hi && v == (v as i64) as f64).then_some(v as i64)
    }
    /// An index below `n`.
    fn index(&mut self, n: usize) -> Option<usize> {
        Some(self.int(0.0, n as f64 - 1.0)? as usize)
    }
    /// `-1` or an index below `n`.
    fn opt_index(&mut self, n: usize) -> Option<Option<usize>> {
        let v = self.int(-1.0, n as f64 - 1.0)?;
        Some((v >= 0).then_some(v as usize))
    }
    fn flag(&mut self) -> Option<bool> {
        Some(self.int(0.0, 1.0)? == 1)
    }
    /// A count that the rest of the data can hold (at least `each` values per element).
    fn count(&mut self, each: usize) -> Option<usize> {
        let n = self.int(0.0, self.d.len() as f64)? as usize;
        (n.checked_mul(each)? <= self.d.len() - self.i).then_some(n)
    }
    fn indices(&mut self, n: usize) -> Option<Vec<usize>> {
        let k = self.count(1)?;
        let mut v = Vec::with_capacity(k);
        for _ in 0..k {
            v.push(self.index(n)?);
        }
        Some(v)
    }
}

const BIG: f64 = 9.0e15;

fn read(r: &mut Reader<'_>, platform: Platform) -> Option<Course> {
    if r.num()? != VERSION {
        return None;
    }
    let nitems = r.count(19)?;
    let ncats = r.int(1.0, r.d.len() as f64)? as usize;
    let maxcoef = r.num()?;
    let minmax_from_grade = r.flag()?;
    let mut items = Vec::with_capacity(nitems);
    let (mut dmin, mut dmax) = (Vec::with_capacity(nitems), Vec::with_capacity(nitems));
    for _ in 0..nitems {
        let itemtype = *ITEMTYPES.get(r.index(4)?)?;
        let gradetype = r.int(0.0, 3.0)? as i32;
        let mut v = [0.0; 11];
        for x in &mut v {
            *x = r.num()?;
        }
        let parent = r.opt_index(ncats)?;
        let own_category = r.opt_index(ncats)?;
        dmin.push(r.num()?);
        dmax.push(r.num()?);
        let id = r.int(1.0, BIG)?;
        let formula = match r.int(-1.0, r.d.len() as f64)? {
            -1 => None,
            ndeps => {
                let mut deps = Vec::with_capacity(ndeps as usize);
                for _ in 0..ndeps {
                    deps.push(r.index(nitems)?);
                }
                let ntokens = r.count(3)?;
                let mut tokens = Vec::with_capacity(ntokens);
                for _ in 0..ntokens {
                    let kind = r.int(0.0, 4.0)?;
                    let a = r.num()?;
                    let b = r.int(0.0, BIG)? as usize;
                    let whole = |hi: f64| (a >= 0.0 && a <= hi && a == (a as i64) as f64).then_some(a as usize);
                    tokens.push(match kind {
                        0 => Token::Num(a),
                        1 => Token::Var(whole(deps.len() as f64 - 1.0)?),
                        2 => Token::Bin(*BINOPS.get(whole(10.0)?)?),
                        3 => Token::Neg,
                        _ => {
                            let f = *FUNCS.get(whole(28.0)?)?;
                            if !arity_ok(f, b) {
                                return None;
                            }
                            Token::Func(f, b)
                        }
                    });
                }
                let f = Formula { tokens };
                f.check_stack().ok()?;
                Some((f, deps))
            }
        };
        items.push(Item {
            id,
            idnumber: String::new(),
            itemtype,
            gradetype,
            grademin: v[0],
            grademax: v[1],
            multfactor: v[2],
            plusfactor: v[3],
            aggregationcoef: v[4],
            aggregationcoef2: v[5],
            weightoverride: v[6] != 0.0,
            rawgrademin: v[7],
            rawgrademax: v[8],
            given_range: (v[9], v[10]),
            hidden: false,
            calculation: None,
            formula,
            parent,
            own_category,
        });
    }
    let mut categories = Vec::with_capacity(ncats);
    for _ in 0..ncats {
        let parent = r.opt_index(ncats)?;
        let aggregation = r.int(0.0, 13.0)? as i32;
        if !aggregation::ALL.contains(&aggregation) {
            return None;
        }
        let aggregateonlygraded = r.flag()?;
        let droplow = r.int(0.0, BIG)?;
        let keephigh = r.int(0.0, BIG)?;
        let stored = Stored {
            aggregation: r.int(0.0, 13.0)? as i32,
            droplow: r.int(0.0, BIG)?,
            keephigh: r.int(0.0, BIG)?,
            can_apply_limit_rules: r.flag()?,
        };
        let item = r.index(nitems)?;
        let depth = r.index(ncats)?;
        let can_apply_limit_rules = r.flag()?;
        let id = r.int(-BIG, BIG)?;
        let children = r.indices(nitems)?;
        let deps = r.indices(nitems)?;
        categories.push(Category {
            id,
            parent,
            aggregation,
            aggregateonlygraded,
            droplow,
            keephigh,
            stored,
            item,
            depth,
            children,
            deps,
            can_apply_limit_rules,
        });
    }
    let order = r.indices(nitems)?;
    if r.i != r.d.len() {
        return None;
    }
    Some(Course { items, categories, order, platform, raw_defaults: (dmin, dmax), maxcoef, minmax_from_grade })
}
