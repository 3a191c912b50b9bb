//! Course description: categories, grade items, and its validation.

use crate::fm;
use crate::formula::Formula;
use crate::json::{self, Json};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// `GRADE_AGGREGATE_*` from `lib/grade/constants.php`.
pub mod aggregation {
    pub const MEAN: i32 = 0;
    pub const MEDIAN: i32 = 2;
    pub const MIN: i32 = 4;
    pub const MAX: i32 = 6;
    pub const MODE: i32 = 8;
    pub const WEIGHTED_MEAN: i32 = 10;
    pub const WEIGHTED_MEAN2: i32 = 11;
    pub const EXTRACREDIT_MEAN: i32 = 12;
    pub const SUM: i32 = 13;
    pub const ALL: [i32; 9] = [MEAN, MEDIAN, MIN, MAX, MODE, WEIGHTED_MEAN, WEIGHTED_MEAN2, EXTRACREDIT_MEAN, SUM];
}

/// `GRADE_TYPE_*`.
pub mod gradetype {
    pub const NONE: i32 = 0;
    pub const VALUE: i32 = 1;
    pub const SCALE: i32 = 2;
    pub const TEXT: i32 = 3;
}

/// Cell flags of the grade matrix (one byte per user and item).
pub mod flag {
    /// The cell has a grade (otherwise the grade is empty / NULL).
    pub const HAS_VALUE: u8 = 1;
    /// `grade_grades.excluded`: left out of its category's aggregation.
    pub const EXCLUDED: u8 = 2;
    /// `grade_grades.overridden` (or locked): the value is the final grade and is not recomputed.
    pub const OVERRIDDEN: u8 = 4;
    /// `grade_grades.hidden`: carried for the user report; does not change the regrade.
    pub const HIDDEN: u8 = 8;
    pub const ALL: u8 = HAS_VALUE | EXCLUDED | OVERRIDDEN | HIDDEN;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    /// Activity item: the cell is the raw grade, the final grade is `adjust_raw_grade()`.
    Mod,
    /// Manual item: the cell is the final grade.
    Manual,
    /// Category total.
    Category,
    /// Course total.
    Course,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub idnumber: String,
    pub itemtype: ItemType,
    pub gradetype: i32,
    pub grademin: f64,
    pub grademax: f64,
    pub multfactor: f64,
    pub plusfactor: f64,
    pub aggregationcoef: f64,
    pub aggregationcoef2: f64,
    pub weightoverride: bool,
    pub rawgrademin: f64,
    pub rawgrademax: f64,
    /// grademin/grademax as given, before natural maxima are recomputed: the range stored with an
    /// overridden category or course total.
    pub given_range: (f64, f64),
    pub hidden: bool,
    pub calculation: Option<String>,
    /// Compiled calculation and the item indices its variables refer to.
    pub formula: Option<(Formula, Vec<usize>)>,
    /// Category that contains this item (for category items: the parent of their category).
    pub parent: Option<usize>,
    /// For category and course items: the category they total.
    pub own_category: Option<usize>,
}

impl Item {
    pub fn is_aggregate(&self) -> bool {
        matches!(self.itemtype, ItemType::Category | ItemType::Course)
    }
    pub fn is_calculated(&self) -> bool {
        self.formula.is_some()
    }
}

/// A category's settings as stored in `grade_categories` (what `pre_regrade_final_grades()` sees;
/// the aggregation itself runs with the site's forced settings applied).
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    pub aggregation: i32,
    pub droplow: i64,
    pub keephigh: i64,
    pub can_apply_limit_rules: bool,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: i64,
    pub parent: Option<usize>,
    /// Effective settings (forced site settings applied, as `depends_on()` does).
    pub aggregation: i32,
    pub aggregateonlygraded: bool,
    pub droplow: i64,
    pub keephigh: i64,
    pub stored: Stored,
    /// Index of this category's total item.
    pub item: usize,
    pub depth: usize,
    /// Child items (grade items and child category totals) in sort order.
    pub children: Vec<usize>,
    /// Children that take part in aggregation (value and scale items), in item id order.
    pub deps: Vec<usize>,
    pub can_apply_limit_rules: bool,
}

#[derive(Debug, Clone)]
pub struct Course {
    pub items: Vec<Item>,
    pub categories: Vec<Category>,
    /// Items that are computed (category/course totals, calculated items) in dependency order.
    pub order: Vec<usize>,
    /// `sin`, `ln`, `pow` ... for formulas (see [`Platform`]).
    pub platform: Platform,
    /// `rawgrademin`/`rawgrademax` of each item's row before the regrade: a fresh category row
    /// has Moodle's defaults 0..100, calculated items their item's range, activity and manual
    /// rows the item's raw range.
    pub raw_defaults: (Vec<f64>, Vec<f64>),
    /// The factor on a value grade's maximum in `grade_item::bounded_grade()`: the site setting
    /// `gradeoverhundredprocentmax` when `unlimitedgrades` is on, else 1 (grades may not exceed
    /// the maximum; `grademax * 1.0` is `grademax` exactly).
    pub maxcoef: f64,
    /// `minmaxtouse` = 2 (course setting, else the site's `grade_minmaxtouse`): every grade is
    /// aggregated with its own row's `rawgrademin`/`rawgrademax` (`grade_grade::get_grade_min_and_max()`),
    /// i.e. the item's raw range ([`Course::raw_defaults`]), not the item's current range.
    pub minmax_from_grade: bool,
}

/// What the core takes from the platform it runs on.  [`Platform::RUST`] everywhere but in the
/// browser, where the bundle uses JavaScript's `Number()` and `Math` instead of carrying its own
/// float parser and libm (they would triple its size).  `Number()` is correctly rounded like
/// Rust's parser; `Math.sin` & co. are, like glibc's and Rust's, within an ulp of the exact value,
/// which the `DECIMAL(10,5)` rounding of every stored grade hides.
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub parse_num: json::ParseNum,
    pub builtin: crate::formula::Builtin,
    /// `pow()` for the `^` operator and `power()`.
    pub pow: fn(f64, f64) -> f64,
}

#[cfg(feature = "std")]
impl Platform {
    pub const RUST: Platform =
        Platform { parse_num: json::rust_parse_num, builtin: crate::formula::apply_builtin, pow: f64::powf };
}

// Without `std` (the browser bundle) the core calls the binding's `gradebook_platform_parse_num`,
// `gradebook_platform_builtin` and `gradebook_platform_pow` (`#[no_mangle]` functions, the same
// ones the binding puts into its `Platform`) directly: a call through a pointer stored in the
// course would keep every function-pointer target of the program, `core::fmt`'s included, in the
// bundle.
impl Platform {
    /// The number parser to call.
    #[inline]
    pub fn parse_num_fn(&self) -> json::ParseNum {
        #[cfg(feature = "std")]
        return self.parse_num;
        #[cfg(not(feature = "std"))]
        return fm::platform_parse_num;
    }
    /// The one-argument functions to call.
    #[inline]
    pub fn builtin_fn(&self) -> crate::formula::Builtin {
        #[cfg(feature = "std")]
        return self.builtin;
        #[cfg(not(feature = "std"))]
        return fm::platform_builtin;
    }
    /// The `pow()` to call.
    #[inline]
    pub fn pow_fn(&self) -> fn(f64, f64) -> f64 {
        #[cfg(feature = "std")]
        return self.pow;
        #[cfg(not(feature = "std"))]
        return fm::platform_pow;
    }
}

fn num(v: &Json, key: &str, default: Option<f64>, ctx: &str) -> Result<f64, String> {
    match v.get(key) {
        Some(Json::Num(n)) => {
            if n.is_finite() {
                Ok(*n)
            } else {
                Err(cat!(ctx, ": '", key, "' must be a finite number"))
            }
        }
        Some(Json::Bool(b)) => Ok(f64::from(u8::from(*b))),
        None | Some(Json::Null) => default.ok_or_else(|| cat!(ctx, ": '", key, "' is required")),
        Some(_) => Err(cat!(ctx, ": '", key, "' must be a number")),
    }
}

fn int(v: &Json, key: &str, default: Option<i64>, ctx: &str) -> Result<i64, String> {
    let n = num(v, key, default.map(|d| d as f64), ctx)?;
    if fm::fract(n) != 0.0 || fm::abs(n) > 9.0e15 {
        return Err(cat!(ctx, ": '", key, "' must be an integer"));
    }
    Ok(n as i64)
}

fn boolean(v: &Json, key: &str, ctx: &str) -> Result<bool, String> {
    match v.get(key) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(Json::Num(n)) => Ok(*n != 0.0),
        Some(_) => Err(cat!(ctx, ": '", key, "' must be a boolean")),
    }
}

fn string(v: &Json, key: &str, ctx: &str) -> Result<Option<String>, String> {
    match v.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(cat!(ctx, ": '", key, "' must be a string")),
    }
}

impl Course {
    /// Build a course from its JSON description (see docs/native.md for the format).
    #[cfg(feature = "std")]
    pub fn from_json(text: &str) -> Result<Course, String> {
        Self::from_json_with(text, Platform::RUST)
    }

    /// [`Course::from_json`] with the number parser and functions of the build ([`Platform`]).
    pub fn from_json_with(text: &str, platform: Platform) -> Result<Course, String> {
        let parse_num = platform.parse_num_fn();
        let root = json::parse_with(text, parse_num)?;
        let Some(Json::Arr(cats)) = root.get("categories") else {
            return Err("course: 'categories' must be a list".into());
        };
        let Some(Json::Arr(items)) = root.get("items") else {
            return Err("course: 'items' must be a list".into());
        };
        let forced = Forced::from_json(root.get("forced"))?;
        let (maxcoef, minmax_from_grade) = site_settings(root.get("site"))?;
        let mut categories = Vec::with_capacity(cats.len());
        let mut parents: Vec<Option<i64>> = Vec::new();
        let mut cat_index = IdIndex::default();
        for (i, c) in cats.iter().enumerate() {
            let ctx = cat!("categories[", i, "]");
            let id = int(c, "id", None, &ctx)?;
            if cat_index.insert(id, i).is_some() {
                return Err(cat!(ctx, ": duplicate category id ", id));
            }
            let aggregation = int(c, "aggregation", Some(13), &ctx)? as i32;
            if !aggregation::ALL.contains(&aggregation) {
                return Err(cat!(ctx, ": unknown aggregation method ", aggregation));
            }
            let droplow = int(c, "droplow", Some(0), &ctx)?;
            let keephigh = int(c, "keephigh", Some(0), &ctx)?;
            if droplow < 0 || keephigh < 0 {
                return Err(cat!(ctx, ": droplow and keephigh must not be negative"));
            }
            parents.push(match c.get("parent") {
                None | Some(Json::Null) => None,
                Some(_) => Some(int(c, "parent", None, &ctx)?),
            });
            let aggregateonlygraded = boolean(c, "aggregateonlygraded", &ctx)?;
            categories.push(Category {
                id,
                parent: None,
                aggregation: forced.aggregation.unwrap_or(aggregation),
                aggregateonlygraded: forced.aggregateonlygraded.unwrap_or(aggregateonlygraded),
                droplow: forced.droplow.unwrap_or(droplow),
                keephigh: forced.keephigh.unwrap_or(keephigh),
                stored: Stored { aggregation, droplow, keephigh, can_apply_limit_rules: true },
                item: usize::MAX,
                depth: 0,
                children: Vec::new(),
                deps: Vec::new(),
                can_apply_limit_rules: true,
            });
        }
        for (i, p) in parents.iter().enumerate() {
            if let Some(p) = p {
                let pi = *cat_index
                    .get(p)
                    .ok_or_else(|| cat!("categories[", i, "]: parent ", *p, " is not a category of this course"))?;
                categories[i].parent = Some(pi);
            }
        }
        let roots: Vec<usize> = (0..categories.len()).filter(|&i| categories[i].parent.is_none()).collect();
        if roots.len() != 1 {
            return Err(cat!("course: expected exactly one course category (parent null), found ", roots.len()));
        }
        // Depths, rejecting loops in the category tree.
        for i in 0..categories.len() {
            let mut d = 0;
            let mut cur = categories[i].parent;
            while let Some(p) = cur {
                d += 1;
                if d > categories.len() {
                    return Err(cat!("categories: parent loop through category ", categories[i].id));
                }
                cur = categories[p].parent;
            }
            categories[i].depth = d;
        }

        let mut out_items: Vec<Item> = Vec::with_capacity(items.len());
        let mut item_by_id = IdIndex::default();
        for (i, it) in items.iter().enumerate() {
            let ctx = cat!("items[", i, "]");
            let id = int(it, "id", None, &ctx)?;
            if id <= 0 {
                return Err(cat!(ctx, ": id must be positive"));
            }
            if item_by_id.insert(id, i).is_some() {
                return Err(cat!(ctx, ": duplicate item id ", id));
            }
            let itemtype = match string(it, "itemtype", &ctx)?.as_deref() {
                Some("mod") | None => ItemType::Mod,
                Some("manual") => ItemType::Manual,
                Some("category") => ItemType::Category,
                Some("course") => ItemType::Course,
                Some(other) => return Err(cat!(ctx, ": unknown itemtype '", other, "'")),
            };
            let catid = int(it, "categoryid", None, &ctx)?;
            let ci = *cat_index
                .get(&catid)
                .ok_or_else(|| cat!(ctx, ": categoryid ", catid, " is not a category of this course"))?;
            let gt = int(it, "gradetype", Some(1), &ctx)? as i32;
            if !(0..=3).contains(&gt) {
                return Err(cat!(ctx, ": unknown gradetype ", gt));
            }
            let grademin = num(it, "grademin", Some(0.0), &ctx)?;
            let grademax = num(it, "grademax", Some(100.0), &ctx)?;
            let (parent, own) = match itemtype {
                ItemType::Category | ItemType::Course => {
                    if categories[ci].item != usize::MAX {
                        return Err(cat!(ctx, ": category ", catid, " already has a total item"));
                    }
                    let is_root = categories[ci].parent.is_none();
                    if is_root != (itemtype == ItemType::Course) {
                        return Err(cat!(
                            ctx,
                            ": the course category's total must have itemtype 'course' and other totals 'category'"
                        ));
                    }
                    if gt != gradetype::VALUE && gt != gradetype::SCALE {
                        return Err(cat!(ctx, ": a category total must be a value or scale item"));
                    }
                    categories[ci].item = i;
                    (categories[ci].parent, Some(ci))
                }
                _ => (Some(ci), None),
            };
            out_items.push(Item {
                id,
                idnumber: string(it, "idnumber", &ctx)?.unwrap_or_default(),
                itemtype,
                gradetype: gt,
                grademin,
                grademax,
                multfactor: num(it, "multfactor", Some(1.0), &ctx)?,
                plusfactor: num(it, "plusfactor", Some(0.0), &ctx)?,
                aggregationcoef: num(it, "aggregationcoef", Some(0.0), &ctx)?,
                aggregationcoef2: num(it, "aggregationcoef2", Some(0.0), &ctx)?,
                weightoverride: boolean(it, "weightoverride", &ctx)?,
                rawgrademin: num(it, "rawgrademin", Some(grademin), &ctx)?,
                rawgrademax: num(it, "rawgrademax", Some(grademax), &ctx)?,
                given_range: (grademin, grademax),
                hidden: boolean(it, "hidden", &ctx)?,
                calculation: string(it, "calculation", &ctx)?.filter(|s| !s.trim().is_empty()),
                formula: None,
                parent,
                own_category: own,
            });
        }
        for c in &categories {
            if c.item == usize::MAX {
                return Err(cat!("category ", c.id, ": no total item (itemtype 'category'/'course')"));
            }
        }
        // Children in item order (sort order).
        for (i, it) in out_items.iter().enumerate() {
            if let Some(p) = it.parent {
                categories[p].children.push(i);
                if it.gradetype == gradetype::VALUE || it.gradetype == gradetype::SCALE {
                    categories[p].deps.push(i);
                }
            }
        }
        // Moodle reads a user's grades with `ORDER BY userid` over the unique (userid, itemid)
        // key, so within one user the rows (and so ties in sorting) come in item id order.
        for c in &mut categories {
            insertion_sort_by(&mut c.deps, |&a, &b| out_items[a].id < out_items[b].id);
        }
        // Formulas.
        // (idnumber, index) pairs, searched from the end so a repeated idnumber means the last
        // item that has it; a list rather than a map keeps the browser bundle small.
        let idnumbers: Vec<(String, usize)> = out_items
            .iter()
            .enumerate()
            .filter(|(_, it)| !it.idnumber.is_empty())
            .map(|(i, it)| (it.idnumber.clone(), i))
            .collect();
        for (i, item) in out_items.iter_mut().enumerate() {
            let Some(calc) = item.calculation.clone() else { continue };
            let compiled = compile_formula(&calc, &idnumbers, &item_by_id, parse_num)
                .map_err(|e| cat!("items[", i, "] (id ", item.id, "): calculation ", quote(&calc), ": ", e))?;
            if item.itemtype == ItemType::Mod {
                // Moodle only calculates manual items and totals; keep the model honest.
                item.itemtype = ItemType::Manual;
            }
            item.formula = Some(compiled);
        }
        let mut course =
            Course { items: out_items, categories, order: Vec::new(), platform, raw_defaults: (Vec::new(), Vec::new()), maxcoef, minmax_from_grade };
        course.order = course.dependency_order()?;
        course.pre_regrade();
        course.raw_defaults = course
            .items
            .iter()
            .map(|it| {
                if it.is_calculated() {
                    (it.grademin, it.grademax)
                } else if it.is_aggregate() {
                    (0.0, 100.0)
                } else {
                    (it.rawgrademin, it.rawgrademax)
                }
            })
            .unzip();
        Ok(course)
    }

    /// What `grade_item::depends_on()` returns.
    pub fn depends_on(&self, i: usize) -> &[usize] {
        let it = &self.items[i];
        if let Some((_, deps)) = &it.formula {
            return deps;
        }
        match it.own_category {
            Some(c) => &self.categories[c].deps,
            None => &[],
        }
    }

    fn needs_compute(&self, i: usize) -> bool {
        let it = &self.items[i];
        it.is_calculated() || it.is_aggregate()
    }

    /// Topological order like `grade_regrade_final_grades()`; a cycle is an error naming it.
    fn dependency_order(&self) -> Result<Vec<usize>, String> {
        let n = self.items.len();
        let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        let mut order = Vec::new();
        for start in 0..n {
            if state[start] != 0 || !self.needs_compute(start) {
                continue;
            }
            // Iterative DFS with an explicit path for the error message.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let deps = self.depends_on(node);
                if *next < deps.len() {
                    let d = deps[*next];
                    *next += 1;
                    if !self.needs_compute(d) {
                        continue;
                    }
                    match state[d] {
                        0 => {
                            state[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => {
                            let pos = stack.iter().position(|(x, _)| *x == d).unwrap_or(0);
                            let mut names: Vec<String> =
                                stack[pos..].iter().map(|(x, _)| self.describe(*x)).collect();
                            names.push(self.describe(d));
                            return Err(cat!("circular dependency between grade items: ", join(&names, " -> ")));
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    pub fn describe(&self, i: usize) -> String {
        let it = &self.items[i];
        if it.idnumber.is_empty() {
            cat!("item ", it.id)
        } else {
            cat!("item ", it.id, " [[", it.idnumber, "]]")
        }
    }

    /// `grade_category::pre_regrade_final_grades()` for every category, deepest first:
    /// natural weights (`auto_update_weights`) then natural maxima (`auto_update_max`), each value
    /// stored as the database would hold it.
    fn pre_regrade(&mut self) {
        let mut cats: Vec<usize> = (0..self.categories.len()).collect();
        // krsort by depth; within one depth, the order of fetch_all (id order).
        insertion_sort_by(&mut cats, |&a, &b| {
            let (ca, cb) = (&self.categories[a], &self.categories[b]);
            ca.depth > cb.depth || (ca.depth == cb.depth && ca.id < cb.id)
        });
        for &c in &cats {
            if self.categories[c].stored.aggregation == aggregation::SUM {
                crate::regrade::auto_update_weights(self, c);
                let stored = self.categories[c].stored.aggregation;
                self.categories[c].stored.can_apply_limit_rules = crate::regrade::can_apply_limit_rules(self, c, stored);
                crate::regrade::auto_update_max(self, c);
            }
        }
        // The aggregation runs on category objects loaded after this, with forced settings.
        for c in cats {
            let agg = self.categories[c].aggregation;
            self.categories[c].can_apply_limit_rules = crate::regrade::can_apply_limit_rules(self, c, agg);
        }
    }
}

/// Settings that change the regrade (`site` in the spec): `unlimitedgrades` (default off) and
/// `gradeoverhundredprocentmax` (default 10, as `bounded_grade()` reads it), giving
/// [`Course::maxcoef`]; `minmaxtouse` (1 or 2, default 1: the course's effective setting), giving
/// [`Course::minmax_from_grade`].  Any other key is an error: an unmodelled setting is never ignored.
fn site_settings(v: Option<&Json>) -> Result<(f64, bool), String> {
    let Some(v) = v else {
        return Ok((1.0, false));
    };
    let Json::Obj(map) = v else {
        return Err("course: 'site' must be an object".into());
    };
    // The first unknown key in sorted order (as the PHP engine reports it).
    let mut unknown: Option<&String> = None;
    for (k, _) in map {
        let known = k == "unlimitedgrades" || k == "gradeoverhundredprocentmax" || k == "minmaxtouse";
        if !known && unknown.is_none_or(|u| k < u) {
            unknown = Some(k);
        }
    }
    if let Some(k) = unknown {
        return Err(cat!("site: unknown setting '", k.as_str(), "'"));
    }
    let factor = num(v, "gradeoverhundredprocentmax", Some(10.0), "site")?;
    let minmaxtouse = int(v, "minmaxtouse", Some(1), "site")?;
    if minmaxtouse != 1 && minmaxtouse != 2 {
        return Err(cat!("site: minmaxtouse must be 1 or 2, got ", minmaxtouse));
    }
    Ok((if boolean(v, "unlimitedgrades", "site")? { factor } else { 1.0 }, minmaxtouse == 2))
}

/// Site-forced category settings (`grade_<setting>_flag & 1`).  Moodle's defaults force
/// "keep highest" to 0, so a spec without `forced` gets `{"keephigh": 0}`; `{}` forces nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Forced {
    pub aggregation: Option<i32>,
    pub aggregateonlygraded: Option<bool>,
    pub droplow: Option<i64>,
    pub keephigh: Option<i64>,
}

impl Forced {
    fn from_json(v: Option<&Json>) -> Result<Forced, String> {
        let Some(v) = v else {
            return Ok(Forced { keephigh: Some(0), ..Forced::default() });
        };
        let Json::Obj(map) = v else {
            return Err("course: 'forced' must be an object".into());
        };
        // Each key once, in sorted order (what iterating a sorted map gives).
        let mut keys: Vec<&String> = Vec::new();
        for (k, _) in map {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        insertion_sort_by(&mut keys, |a, b| a < b);
        let mut f = Forced::default();
        for key in keys {
            match key.as_str() {
                "aggregation" => {
                    let a = int(v, key, None, "forced")? as i32;
                    if !aggregation::ALL.contains(&a) {
                        return Err(cat!("forced: unknown aggregation method ", a));
                    }
                    f.aggregation = Some(a);
                }
                "aggregateonlygraded" => f.aggregateonlygraded = Some(boolean(v, key, "forced")?),
                "droplow" => f.droplow = Some(int(v, key, None, "forced")?.max(0)),
                "keephigh" => f.keephigh = Some(int(v, key, None, "forced")?.max(0)),
                other => return Err(cat!("forced: unknown setting '", other, "'")),
            }
        }
        Ok(f)
    }
}

/// id -> index, a sorted list (ids mostly arrive in order, so inserting appends); smaller in the
/// browser bundle than a map.
#[derive(Debug, Default)]
struct IdIndex(Vec<(i64, usize)>);

impl IdIndex {
    /// Like `BTreeMap::insert`: `Some(previous)` when the id was there already.
    fn insert(&mut self, id: i64, index: usize) -> Option<usize> {
        match self.0.binary_search_by(|(k, _)| k.cmp(&id)) {
            Ok(pos) => Some(core::mem::replace(&mut self.0[pos].1, index)),
            Err(pos) => {
                self.0.insert(pos, (id, index));
                None
            }
        }
    }

    fn get(&self, id: &i64) -> Option<&usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(id)).ok().map(|pos| &self.0[pos].1)
    }
}

/// `str::find` for a short needle (the byte-window loop is much smaller in the browser bundle
/// than the two-way string searcher).
fn find(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|w| w == needle.as_bytes())
}

/// `[a, b].join(sep)` without `alloc::str::join` (code size in the browser bundle).
pub(crate) fn join(parts: &[String], sep: &str) -> String {
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
fn quote(s: &str) -> String {
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

/// Stable insertion sort (`less` is strict).  Used once per course on short lists; far smaller
/// in the browser bundle than `slice::sort_by`.
fn insertion_sort_by<T: Copy>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && less(&x, &v[j - 1]) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

fn compile_formula(
    calc: &str,
    idnumbers: &[(String, usize)],
    item_by_id: &IdIndex,
    num: json::ParseNum,
) -> Result<(Formula, Vec<usize>), String> {
    let calc = calc.trim();
    let Some(body) = calc.strip_prefix('=') else {
        return Err("a calculation must start with '='".into());
    };
    // normalize_formula(): [[idnumber]] -> ##giID## ; compute(): ##giID## -> giID.
    let mut text = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = find(rest, "[[") {
        text.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 2..).unwrap_or("");
        let end = find(after, "]]").ok_or("unterminated [[idnumber]] reference")?;
        let idn = after.get(..end).unwrap_or("");
        let target = idnumbers
            .iter()
            .rev()
            .find(|(k, _)| k == idn)
            .map(|(_, i)| i)
            .ok_or_else(|| cat!("unknown idnumber [[", idn, "]]"))?;
        text.push_str(&cat!("##gi", *target as i64 + 1_000_000_000_000, "##"));
        rest = after.get(end + 2..).unwrap_or("");
    }
    text.push_str(rest);
    // Index-based placeholders (offset so they can never collide with an item id) -> item index.
    let mut deps: Vec<usize> = Vec::new();
    let mut normal = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = find(rest, "##gi") {
        normal.push_str(rest.get(..start).unwrap_or(""));
        let after = rest.get(start + 4..).unwrap_or("");
        let end = find(after, "##").ok_or("unterminated ##giID## reference")?;
        let digits = after.get(..end).unwrap_or("");
        let n: i64 = digits.parse().map_err(|_| cat!("bad reference ##gi", digits, "##"))?;
        let idx = if n >= 1_000_000_000_000 {
            (n - 1_000_000_000_000) as usize
        } else {
            *item_by_id.get(&n).ok_or_else(|| cat!("unknown grade item ##gi", n, "##"))?
        };
        let slot = match deps.iter().position(|d| *d == idx) {
            Some(p) => p,
            None => {
                deps.push(idx);
                deps.len() - 1
            }
        };
        normal.push_str(&cat!("v", slot, "v"));
        rest = after.get(end + 2..).unwrap_or("");
    }
    normal.push_str(rest);
    let f = Formula::parse_with(&normal, &mut |name: &str| {
        name.strip_prefix('v')
            .and_then(|s| s.strip_suffix('v'))
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|s| *s < deps.len())
            .ok_or_else(|| cat!("unknown variable '", name, "' (refer to items as [[idnumber]] or ##giID##)"))
    }, num)?;
    Ok((f, deps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn quote_find_and_join_equal_the_std_versions() {
        let mut all = String::from("=[[a]]+\"b\\c\"\n\r\t\0 é x");
        all.extend((0u8..0x80).map(char::from));
        for s in [all.as_str(), "", "=[[a]]*2", "\u{1b}\u{7f}"] {
            assert_eq!(quote(s), format!("{s:?}"));
        }
        for (h, n) in [("ab[[c]]", "[["), ("ab[[c]]", "]]"), ("x", "##"), ("##gi1####", "##"), ("", "[[")] {
            assert_eq!(find(h, n), h.find(n));
        }
        let parts = vec!["a".to_string(), "b".into(), "c".into()];
        assert_eq!(join(&parts, " -> "), parts.join(" -> "));
        assert_eq!(join(&[], "/"), "");
    }
}
