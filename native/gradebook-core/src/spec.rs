//! Reading a course from its JSON description (docs/native.md, "Course description"): validation,
//! the site settings, formulas compiled against the course's items, the dependency order, and
//! `pre_regrade_final_grades()` (Natural weights and maxima) - the loaded state every regrade
//! starts from.

use crate::fm;
use crate::formula::Formula;
use crate::json::{self, Json};
use crate::model::{aggregation, gradetype, Category, Course, Item, ItemType, Stored};
use crate::msg::{join, quote};
use crate::platform::{ParseNum, Platform};
use crate::regrade;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

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
                regrade::auto_update_weights(self, c);
                let stored = self.categories[c].stored.aggregation;
                self.categories[c].stored.can_apply_limit_rules = regrade::can_apply_limit_rules(self, c, stored);
                regrade::auto_update_max(self, c);
            }
        }
        // The aggregation runs on category objects loaded after this, with forced settings.
        for c in cats {
            let agg = self.categories[c].aggregation;
            self.categories[c].can_apply_limit_rules = regrade::can_apply_limit_rules(self, c, agg);
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
    num: ParseNum,
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

    #[test]
    fn find_equals_the_std_version() {
        for (h, n) in [("ab[[c]]", "[["), ("ab[[c]]", "]]"), ("x", "##"), ("##gi1####", "##"), ("", "[[")] {
            assert_eq!(find(h, n), h.find(n));
        }
    }
}
