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

use crate::formula::{BinOp, Formula, Func, Token};
use crate::model::{Category, Course, Item, ItemType, Platform, Stored};
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
                            if !crate::formula::arity_ok(f, b) {
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
        if !crate::model::aggregation::ALL.contains(&aggregation) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"categories": [{"id": 1, "parent": null, "aggregation": 13},
        {"id": 2, "parent": 1, "aggregation": 10, "droplow": 1}],
      "items": [{"id": 1, "itemtype": "course", "categoryid": 1},
        {"id": 2, "itemtype": "category", "categoryid": 2},
        {"id": 3, "idnumber": "a", "categoryid": 2, "grademax": 20, "aggregationcoef": 2},
        {"id": 4, "idnumber": "b", "categoryid": 2, "aggregationcoef": 1},
        {"id": 5, "itemtype": "manual", "categoryid": 1,
         "calculation": "=round(max([[a]], [[b]]/5) + sin(2)^2 - -1, 2) + if([[a]] > 3, 1, 0)"}]}"#;

    fn run(c: &Course) -> crate::Regraded {
        let cells = [0.0, 0.0, 12.5, 60.0, 0.0];
        let flags = [0, 0, 1, 1, 0];
        crate::regrade_packed(c, 1, &cells, &flags).unwrap()
    }

    #[test]
    fn round_trip_regrades_the_same() {
        let c = Course::from_json(SPEC).unwrap();
        let data = c.to_compiled();
        let back = Course::from_compiled(&data, Platform::RUST).unwrap();
        assert_eq!(back.to_compiled().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                   data.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(run(&back), run(&c));
    }

    #[test]
    fn malformed_data_is_an_error_never_a_panic() {
        let data = Course::from_json(SPEC).unwrap().to_compiled();
        for len in 0..data.len() {
            assert!(Course::from_compiled(&data[..len], Platform::RUST).is_err(), "prefix of {len} values");
        }
        let mut longer = data.clone();
        longer.push(0.0);
        assert!(Course::from_compiled(&longer, Platform::RUST).is_err());
        // Every value replaced by something out of place: an error, or a course that regrades.
        for k in 0..data.len() {
            for bad in [-2.0, -1.0, 0.5, 3.0, 7.0, 29.0, 1e300, f64::NAN, f64::INFINITY] {
                let mut d = data.clone();
                d[k] = bad;
                if let Ok(c) = Course::from_compiled(&d, Platform::RUST) {
                    let _ = run(&c);
                }
            }
        }
        assert_eq!(Course::from_compiled(&[2.0], Platform::RUST).unwrap_err(), "compiled course: malformed data");
    }
}

#[cfg(test)]
mod site_tests {
    use super::*;

    /// A one-category course (mean) with the given `site` settings and items after the course total.
    fn course(site: &str, items: &str) -> Result<Course, String> {
        let mut s = String::from(r#"{"categories": [{"id": 1, "parent": null, "aggregation": 0}],"#);
        s.push_str(site);
        s.push_str(r#""items": [{"id": 1, "itemtype": "course", "categoryid": 1}, "#);
        s.push_str(items);
        s.push_str("]}");
        Course::from_json(&s)
    }

    fn finals(c: &Course, cells: &[f64], flags: &[u8]) -> Vec<f64> {
        crate::regrade_packed(c, 1, cells, flags).unwrap().finalgrade
    }

    /// `bounded_grade()` with `unlimitedgrades`: an activity grade (adjust_raw_grade), a calculated
    /// grade (use_formula) and a category total (aggregate_grades) may reach max x factor.
    #[test]
    fn unlimited_grades_raise_the_bound_by_the_factor() {
        let items = r#"{"id": 2, "idnumber": "a", "categoryid": 1, "grademax": 10, "multfactor": 1.5},
            {"id": 3, "itemtype": "manual", "categoryid": 1, "calculation": "=[[a]]*10"}"#;
        let run = |site: &str| finals(&course(site, items).unwrap(), &[0.0, 9.0, 0.0], &[0, 1, 0]);
        assert_eq!(run(""), [100.0, 10.0, 100.0]);
        assert_eq!(run(r#""site": {"unlimitedgrades": false, "gradeoverhundredprocentmax": 2},"#), [100.0, 10.0, 100.0]);
        assert_eq!(run(r#""site": {"unlimitedgrades": true, "gradeoverhundredprocentmax": 2},"#), [135.0, 13.5, 135.0]);
        // A factor below the grade caps it.
        assert_eq!(run(r#""site": {"unlimitedgrades": true, "gradeoverhundredprocentmax": 1.2},"#), [120.0, 12.0, 120.0]);
        // The compiled course (the widget's input) carries the factor.
        let on = course(r#""site": {"unlimitedgrades": true, "gradeoverhundredprocentmax": 2},"#, items).unwrap();
        let back = Course::from_compiled(&on.to_compiled(), Platform::RUST).unwrap();
        assert_eq!(finals(&back, &[0.0, 9.0, 0.0], &[0, 1, 0]), [135.0, 13.5, 135.0]);
    }

    /// `grade_grade::get_grade_min_and_max()` with `minmaxtouse` = 2: a grade is aggregated with its
    /// row's raw range.  The activity (now 0..10) was graded out of 0..20: raw 10 is 5/10 either way,
    /// but the mean normalises 5 with 0..20 (25%) instead of 0..10 (50%).
    #[test]
    fn initial_min_max_normalise_with_the_row_range() {
        let items = r#"{"id": 2, "categoryid": 1, "grademax": 10, "rawgrademax": 20}"#;
        let run = |c: &Course| finals(c, &[0.0, 10.0], &[0, 1]);
        assert_eq!(run(&course("", items).unwrap()), [50.0, 5.0]);
        assert_eq!(run(&course(r#""site": {"minmaxtouse": 1},"#, items).unwrap()), [50.0, 5.0]);
        let two = course(r#""site": {"minmaxtouse": 2},"#, items).unwrap();
        assert_eq!(run(&two), [25.0, 5.0]);
        let back = Course::from_compiled(&two.to_compiled(), Platform::RUST).unwrap();
        assert_eq!(run(&back), [25.0, 5.0]);
    }

    #[test]
    fn unknown_or_invalid_site_settings_are_rejected() {
        let items = r#"{"id": 2, "categoryid": 1}"#;
        let e = course(r#""site": {"outcomes": 1, "grade_minmaxtouse": 2},"#, items).unwrap_err();
        assert_eq!(e, "site: unknown setting 'grade_minmaxtouse'");
        let e = course(r#""site": {"minmaxtouse": 3},"#, items).unwrap_err();
        assert_eq!(e, "site: minmaxtouse must be 1 or 2, got 3");
    }
}
