//! Whole-course regrade: `grade_regrade_final_grades()` with `grade_category::generate_grades()`
//! / `aggregate_grades()` / `aggregate_values_and_adjust_bounds()` / `apply_limit_rules()` and
//! `grade_item::compute()` / `adjust_raw_grade()` / `bounded_grade()` from Moodle 4.5.
//!
//! Settings: `unlimitedgrades` with `gradeoverhundredprocentmax` ([`Course::maxcoef`]) and
//! `minmaxtouse` ([`Course::minmax_from_grade`]) are modelled; the others are Moodle's defaults -
//! scales are included in aggregation, no gradebook calculation freeze, no outcomes (the plugin's
//! loader refuses courses that use them; docs/native.md lists every setting).

use crate::formula::Formula;
use crate::model::{aggregation as agg, flag, gradetype, Course, Item, ItemType};
use crate::phpmath::{db_decimal5, php_int, php_round_with, php_string14};
use crate::platform::Pow;
use alloc::vec::Vec;

/// `grade_grade::standardise_score()`.
#[inline]
pub fn standardise_score(raw: f64, smin: f64, smax: f64, tmin: f64, tmax: f64) -> f64 {
    if smax == smin || tmin == tmax {
        return tmax;
    }
    let factor = (raw - smin) / (smax - smin);
    let diff = tmax - tmin;
    factor * diff + tmin
}

/// `bounded_number()`.
#[inline]
fn bounded_number(min: f64, v: f64, max: f64) -> f64 {
    if v < min {
        return min;
    }
    if v > max {
        return max;
    }
    v
}

/// `grade_item::bounded_grade()` with the item's (possibly per-user adjusted) range; a value
/// grade may reach `grademax * maxcoef` (`unlimitedgrades`, [`Course::maxcoef`]), a scale grade never
/// exceeds its maximum.
#[inline]
fn bounded_grade(gradetype_: i32, grademin: f64, grademax: f64, maxcoef: f64, v: f64, pow: Pow) -> f64 {
    if gradetype_ == gradetype::SCALE {
        // "1.5 is rounded to 2": (int)bounded_number(min, round(v + 0.00001), max)
        return php_int(bounded_number(grademin, php_round_with(v + 0.00001, 0, pow), grademax)) as f64;
    }
    bounded_number(grademin, v, grademax * maxcoef)
}

/// `grade_item::adjust_raw_grade()` for an activity item.
pub fn adjust_raw_grade(it: &Item, raw: f64, maxcoef: f64, pow: Pow) -> Option<f64> {
    if it.gradetype == gradetype::VALUE {
        if it.grademax < it.grademin {
            return None;
        }
        if it.grademax == it.grademin {
            return Some(it.grademax);
        }
        let mut g = raw;
        if it.rawgrademin != it.grademin || it.rawgrademax != it.grademax {
            g = standardise_score(g, it.rawgrademin, it.rawgrademax, it.grademin, it.grademax);
        }
        g *= it.multfactor;
        g += it.plusfactor;
        Some(bounded_grade(it.gradetype, it.grademin, it.grademax, maxcoef, g, pow))
    } else if it.gradetype == gradetype::SCALE {
        if it.grademax < 0.0 {
            return None;
        }
        if it.grademax == 0.0 {
            return Some(it.grademax);
        }
        let mut g = raw;
        if it.rawgrademin != it.grademin || it.rawgrademax != it.grademax {
            g = standardise_score(g, it.rawgrademin, it.rawgrademax, it.grademin, it.grademax);
        }
        Some(bounded_grade(it.gradetype, it.grademin, it.grademax, maxcoef, g, pow))
    } else {
        None
    }
}

fn is_extracredit_used(aggregation: i32) -> bool {
    aggregation == agg::WEIGHTED_MEAN2 || aggregation == agg::EXTRACREDIT_MEAN || aggregation == agg::SUM
}

/// `grade_category::auto_update_weights()`.
pub fn auto_update_weights(course: &mut Course, c: usize) {
    let children = course.categories[c].children.clone();
    let mut totalgrademax = 0.0;
    let mut totaloverriddenweight = 0.0;
    let mut totaloverriddengrademax = 0.0;
    let mut automatic_present = false;
    // (index, extracredit flag, weight, weightoverride)
    let mut overridearray: Vec<(usize, bool, f64, bool)> = Vec::new();
    for &i in &children {
        let it = &course.items[i];
        if it.gradetype == gradetype::NONE || it.gradetype == gradetype::TEXT {
            continue;
        }
        overridearray.push((i, php_int(it.aggregationcoef) != 0, it.aggregationcoef2, it.weightoverride));
        if !it.weightoverride && it.aggregationcoef == 0.0 {
            automatic_present = true;
        }
        if it.aggregationcoef > 0.0 || (it.weightoverride && it.aggregationcoef2 <= 0.0) {
            continue;
        }
        totalgrademax += it.grademax;
        if it.weightoverride {
            totaloverriddenweight += it.aggregationcoef2;
            totaloverriddengrademax += it.grademax;
        }
    }
    let mut normalisetotal = 0.0;
    let mut overriddentotal = 0.0;
    for &(_, extra, weight, wo) in &overridearray {
        if !extra {
            normalisetotal += weight;
        }
        if wo && !extra && weight > 0.0 {
            overriddentotal += weight;
        }
    }
    let mut requiresnormalising = false;
    if overriddentotal > 1.0 {
        requiresnormalising = true;
        normalisetotal = overriddentotal;
    }
    let totalnonoverriddengrademax = totalgrademax - totaloverriddengrademax;
    for &(i, _, weight, _) in &overridearray {
        let it = &course.items[i];
        if it.aggregationcoef > 0.0 && it.weightoverride {
            continue;
        }
        let prev = it.aggregationcoef2;
        let new = if it.aggregationcoef > 0.0 && !it.weightoverride {
            if totalgrademax != 0.0 {
                it.grademax / totalgrademax
            } else {
                0.0
            }
        } else if !it.weightoverride {
            if totaloverriddenweight >= 1.0 || totalnonoverriddengrademax == 0.0 || it.grademax == 0.0 {
                0.0
            } else {
                (it.grademax / totalnonoverriddengrademax) * (1.0 - totaloverriddenweight)
            }
        } else if (!automatic_present && normalisetotal != 1.0) || requiresnormalising || weight < 0.0 {
            if normalisetotal == 0.0 || weight < 0.0 {
                0.0
            } else {
                weight / normalisetotal
            }
        } else {
            prev
        };
        if php_round_with(prev, 5, course.platform.pow_fn()) != php_round_with(new, 5, course.platform.pow_fn()) {
            course.items[i].aggregationcoef2 = db_decimal5(new);
        }
    }
}

/// `grade_category::can_apply_limit_rules()`.
pub fn can_apply_limit_rules(course: &Course, c: usize, aggregation: i32) -> bool {
    let cat = &course.categories[c];
    if aggregation != agg::SUM {
        return true;
    }
    let mut lastweight: Option<f64> = None;
    let mut lastmax: Option<f64> = None;
    for &i in &cat.children {
        let it = &course.items[i];
        if it.is_aggregate() {
            return false;
        }
        if it.aggregationcoef > 0.0 {
            return false;
        }
        if lastweight.is_some_and(|w| w != it.aggregationcoef2) {
            return false;
        }
        if lastmax.is_some_and(|m| m != it.grademax) {
            return false;
        }
        lastweight = Some(it.aggregationcoef2);
        lastmax = Some(it.grademax);
    }
    true
}

/// `grade_category::auto_update_max()`.
pub fn auto_update_max(course: &mut Course, c: usize) {
    let cat = &course.categories[c];
    let total = cat.item;
    if course.items[total].is_calculated() {
        return;
    }
    if cat.deps.is_empty() {
        let it = &mut course.items[total];
        it.grademax = 0.0;
        it.grademin = 0.0;
        it.gradetype = gradetype::VALUE;
        return;
    }
    let mut maxes: Vec<(usize, f64)> = Vec::new();
    for &i in &cat.deps {
        let it = &course.items[i];
        if it.aggregationcoef > 0.0 || it.aggregationcoef2 <= 0.0 {
            continue;
        }
        maxes.push((i, it.grademax));
    }
    let st = cat.stored;
    if st.can_apply_limit_rules {
        apply_limit_rules(course, st.aggregation, st.droplow, st.keephigh, &mut maxes);
    }
    let max = maxes.iter().fold(0.0, |s, (_, m)| s + m);
    let it = &mut course.items[total];
    it.grademax = db_decimal5(max);
    it.grademin = 0.0;
    it.gradetype = gradetype::VALUE;
}

/// PHP's stable `asort($a, SORT_NUMERIC)`.
#[inline]
fn asort(v: &mut [(usize, f64)]) {
    stable_sort(v, false);
}

/// Stable sort by value, ascending (`asort`) or descending (`arsort`).  Values are never NaN, so
/// this is a total preorder and every stable sort gives the same order as `slice::sort_by`.
/// Insertion sort: the lists are one category's children (small), it needs no buffer, and it is a
/// fraction of the code size of `slice::sort_by` in the browser bundle.  Large lists (rare) go
/// through a merge sort.
pub(crate) fn stable_sort(v: &mut [(usize, f64)], desc: bool) {
    let before = |a: f64, b: f64| if desc { a > b } else { a < b };
    if v.len() > 48 {
        let mid = v.len() / 2;
        stable_sort(&mut v[..mid], desc);
        stable_sort(&mut v[mid..], desc);
        let left = v[..mid].to_vec();
        let (mut i, mut j, mut k) = (0, mid, 0);
        while i < left.len() {
            // Take from the right only when strictly before: ties keep the left (earlier) element.
            if j < v.len() && before(v[j].1, left[i].1) {
                v[k] = v[j];
                j += 1;
            } else {
                v[k] = left[i];
                i += 1;
            }
            k += 1;
        }
        return;
    }
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && before(x.1, v[j - 1].1) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// `grade_category::apply_limit_rules()`.
pub fn apply_limit_rules(course: &Course, aggregation: i32, droplow: i64, keephigh: i64, values: &mut Vec<(usize, f64)>) {
    let extraused = is_extracredit_used(aggregation);
    let items = &course.items;
    if droplow > 0 {
        asort(values);
        let mut dropped = 0;
        while dropped < droplow {
            if values.is_empty() {
                break;
            }
            let Some(orig) = values
                .iter()
                .position(|(i, _)| !extraused || items[*i].aggregationcoef <= 0.0)
            else {
                break;
            };
            let mut found = orig;
            let mut foundmax = items[values[orig].0].grademax;
            let mut k = orig + 1;
            while k < values.len() {
                let possible = k;
                k += 1;
                if values[found].1 != values[possible].1 {
                    break;
                }
                if extraused && items[values[possible].0].aggregationcoef > 0.0 {
                    continue;
                }
                if foundmax < items[values[possible].0].grademax {
                    foundmax = items[values[possible].0].grademax;
                    found = possible;
                }
            }
            values.remove(found);
            dropped += 1;
        }
    } else if keephigh > 0 {
        // arsort: stable, descending.
        stable_sort(values, true);
        let mut kept = 0;
        values.retain(|(i, _)| {
            if extraused && items[*i].aggregationcoef > 0.0 {
                true
            } else if kept < keephigh {
                kept += 1;
                true
            } else {
                false
            }
        });
    }
}

/// Per-user state of one regrade.
#[derive(Debug, Clone)]
pub struct UserGrades {
    /// Final grade per item (`None` = empty).
    pub finalgrade: Vec<Option<f64>>,
    /// `grade_grades.rawgrademin` / `rawgrademax` per item.
    pub rawmin: Vec<f64>,
    pub rawmax: Vec<f64>,
}

/// Reusable buffers so a regrade of many users does not allocate per user.
#[derive(Debug, Default)]
pub struct Scratch {
    weights: Vec<f64>,
    values: Vec<(usize, f64)>,
    params: Vec<f64>,
    stack: Vec<f64>,
    modes: Vec<(f64, usize)>,
}

impl Course {
    /// Regrade one user.  `cells[i]` is the stored value (raw grade for activity items, final
    /// grade for manual and overridden items) and `flags[i]` its [`flag`] bits.
    pub fn regrade_user(&self, cells: &[f64], flags: &[u8], out: &mut UserGrades, scratch: &mut Scratch) {
        let n = self.items.len();
        out.finalgrade.clear();
        out.finalgrade.resize(n, None);
        // Ranges of a fresh row (see Course::raw_defaults); an overridden total keeps its item's.
        out.rawmin.clear();
        out.rawmin.extend_from_slice(&self.raw_defaults.0);
        out.rawmax.clear();
        out.rawmax.extend_from_slice(&self.raw_defaults.1);
        for (i, it) in self.items.iter().enumerate() {
            let f = flags[i];
            if f & flag::OVERRIDDEN != 0 && it.is_aggregate() && !it.is_calculated() {
                out.rawmin[i] = it.given_range.0;
                out.rawmax[i] = it.given_range.1;
            }
            if f & flag::HAS_VALUE == 0 {
                continue;
            }
            let v = db_decimal5(cells[i]);
            if f & flag::OVERRIDDEN != 0 {
                out.finalgrade[i] = Some(v);
                continue;
            }
            match it.itemtype {
                ItemType::Mod if !it.is_calculated() => {
                    out.finalgrade[i] = adjust_raw_grade(it, v, self.maxcoef, self.platform.pow_fn()).map(db_decimal5);
                }
                ItemType::Manual if !it.is_calculated() => out.finalgrade[i] = Some(v),
                _ => {}
            }
        }
        for &i in &self.order {
            if flags[i] & flag::OVERRIDDEN != 0 {
                continue;
            }
            let it = &self.items[i];
            if let Some((formula, deps)) = &it.formula {
                self.use_formula(i, formula, deps, out, scratch);
            } else if let Some(c) = it.own_category {
                self.aggregate_grades(c, flags, out, scratch);
            }
        }
    }

    /// `grade_item::use_formula()`.
    fn use_formula(
        &self,
        i: usize,
        formula: &Formula,
        deps: &[usize],
        out: &mut UserGrades,
        s: &mut Scratch,
    ) {
        let it = &self.items[i];
        s.params.clear();
        let mut allinputsnull = true;
        for &d in deps {
            match out.finalgrade[d] {
                Some(v) => {
                    s.params.push(v);
                    allinputsnull = false;
                }
                None => s.params.push(0.0),
            }
        }
        out.finalgrade[i] = if allinputsnull {
            None
        } else {
            match formula.eval_with(&s.params, &mut s.stack, &self.platform) {
                Some(r) if !r.is_nan() => {
                    Some(db_decimal5(bounded_grade(it.gradetype, it.grademin, it.grademax, self.maxcoef, r, self.platform.pow_fn())))
                }
                _ => None,
            }
        };
    }

    /// `grade_category::aggregate_grades()` for one user.
    fn aggregate_grades(&self, c: usize, flags: &[u8], out: &mut UserGrades, s: &mut Scratch) {
        let cat = &self.categories[c];
        let total = cat.item;
        let titem = &self.items[total];
        out.finalgrade[total] = None;
        if cat.deps.is_empty() {
            return;
        }
        // Normalise to 0..1 in row (sort) order; empty grades count as 0 unless only graded items
        // are aggregated (then they are left out).
        let values = &mut s.values;
        values.clear();
        let mut allnull = true;
        for &d in &cat.deps {
            let v = out.finalgrade[d];
            if v.is_none() && cat.aggregateonlygraded {
                continue;
            }
            if flags[d] & flag::EXCLUDED != 0 {
                continue;
            }
            let v = match v {
                Some(v) => {
                    allnull = false;
                    let (umin, umax) = self.user_min_max(d, out);
                    if cat.aggregation == agg::SUM {
                        standardise_score(v, 0.0, umax, 0.0, 1.0)
                    } else {
                        standardise_score(v, umin, umax, 0.0, 1.0)
                    }
                }
                None => 0.0,
            };
            values.push((d, v));
        }
        if cat.can_apply_limit_rules {
            apply_limit_rules(self, cat.aggregation, cat.droplow, cat.keephigh, values);
        }
        asort(values);
        if values.is_empty() {
            return;
        }
        let (grade, rmin, rmax) = self.aggregate_values_and_adjust_bounds(c, values, out, &mut s.modes, &mut s.weights);
        // grade_item->grademin/max are set to the result; Natural shows its range from 0.
        let (bmin, bmax) = (rmin, rmax);
        let rmin = if cat.aggregation == agg::SUM { 0.0 } else { rmin };
        if !allnull {
            out.finalgrade[total] = grade.map(|g| {
                let g = standardise_score(g, 0.0, 1.0, rmin, rmax);
                db_decimal5(bounded_grade(titem.gradetype, bmin, bmax, self.maxcoef, g, self.platform.pow_fn()))
            });
        }
        out.rawmin[total] = db_decimal5(rmin);
        out.rawmax[total] = db_decimal5(rmax);
    }

    /// `grade_grade::get_grade_min()` / `get_grade_max()` of one cell: the row's range for totals
    /// and with `minmaxtouse` = 2, else the item's.
    #[inline]
    fn user_min_max(&self, d: usize, out: &UserGrades) -> (f64, f64) {
        let it = &self.items[d];
        if (it.is_aggregate() && !it.is_calculated()) || self.minmax_from_grade {
            (out.rawmin[d], out.rawmax[d])
        } else {
            (it.grademin, it.grademax)
        }
    }

    /// `grade_category::aggregate_values_and_adjust_bounds()` (without the weight bookkeeping,
    /// which does not change grades).  `values` are sorted ascending.
    fn aggregate_values_and_adjust_bounds(
        &self,
        c: usize,
        values: &[(usize, f64)],
        out: &UserGrades,
        modes: &mut Vec<(f64, usize)>,
        userweights: &mut Vec<f64>,
    ) -> (Option<f64>, f64, f64) {
        let cat = &self.categories[c];
        let titem = &self.items[cat.item];
        let (grademin, grademax) = (titem.grademin, titem.grademax);
        let items = &self.items;
        let num = values.len();
        let grade = match cat.aggregation {
            agg::MEDIAN => {
                if num % 2 == 0 {
                    Some((values[num / 2 - 1].1 + values[num / 2].1) / 2.0)
                } else {
                    Some(values[num / 2].1)
                }
            }
            agg::MIN => Some(values[0].1),
            agg::MAX => Some(values[num - 1].1),
            agg::MODE => {
                // array_count_values() over (string)$value: values equal to 14 significant digits
                // share a bucket and the mode is that 14-digit value.
                modes.clear();
                for &(_, v) in values {
                    let key = php_string14(v);
                    match modes.iter_mut().find(|(k, _)| *k == key) {
                        Some(m) => m.1 += 1,
                        None => modes.push((key, 1)),
                    }
                }
                let top = modes.iter().map(|m| m.1).max().unwrap_or(0);
                modes
                    .iter()
                    .filter(|m| m.1 == top)
                    .map(|m| m.0)
                    .fold(None, |acc: Option<f64>, k| Some(acc.map_or(k, |a| if k > a { k } else { a })))
            }
            agg::WEIGHTED_MEAN => {
                let mut weightsum = 0.0;
                let mut sum = 0.0;
                for &(i, v) in values {
                    let coef = items[i].aggregationcoef;
                    if coef <= 0.0 {
                        continue;
                    }
                    weightsum += coef;
                    sum += coef * v;
                }
                if weightsum == 0.0 {
                    None
                } else {
                    Some(sum / weightsum)
                }
            }
            agg::WEIGHTED_MEAN2 => {
                let mut weightsum = 0.0;
                let mut sum: Option<f64> = None;
                for &(i, v) in values {
                    if items[i].aggregationcoef > 0.0 {
                        continue;
                    }
                    let w = items[i].grademax - items[i].grademin;
                    if w <= 0.0 {
                        continue;
                    }
                    weightsum += w;
                    sum = Some(sum.unwrap_or(0.0) + w * v);
                }
                for &(i, v) in values {
                    if items[i].aggregationcoef <= 0.0 {
                        continue;
                    }
                    let w = items[i].grademax - items[i].grademin;
                    if w <= 0.0 {
                        continue;
                    }
                    sum = Some(sum.unwrap_or(0.0) + w * v);
                }
                if weightsum == 0.0 {
                    sum
                } else {
                    sum.map(|s| s / weightsum)
                }
            }
            agg::EXTRACREDIT_MEAN => {
                let mut n = 0u32;
                let mut sum: Option<f64> = None;
                for &(i, v) in values {
                    if items[i].aggregationcoef == 0.0 {
                        n += 1;
                        sum = Some(sum.unwrap_or(0.0) + v);
                    }
                }
                for &(i, v) in values {
                    let coef = items[i].aggregationcoef;
                    if coef > 0.0 {
                        sum = Some(sum.unwrap_or(0.0) + coef * v);
                    }
                }
                if n == 0 {
                    sum
                } else {
                    sum.map(|s| s / f64::from(n))
                }
            }
            agg::SUM => return self.natural(values, out, userweights),
            _ => {
                let sum = values.iter().fold(0.0, |s, (_, v)| s + v);
                Some(sum / num as f64)
            }
        };
        (grade, grademin, grademax)
    }

    /// Natural aggregation (`GRADE_AGGREGATE_SUM`), per-user bounds.
    fn natural(&self, values: &[(usize, f64)], out: &UserGrades, userweights: &mut Vec<f64>) -> (Option<f64>, f64, f64) {
        let items = &self.items;
        let mut sumweights = 0.0;
        let mut grademin = 0.0;
        let mut grademax = 0.0;
        let extra = |i: usize| items[i].aggregationcoef > 0.0;
        for &(i, _) in values {
            let (umin, umax) = self.user_min_max(i, out);
            if !extra(i) && items[i].aggregationcoef2 > 0.0 {
                grademin += umin;
                grademax += umax;
                sumweights += items[i].aggregationcoef2;
            }
        }
        // userweights per position in `values` (None = unset, which PHP reads as null => 0).
        userweights.clear();
        userweights.resize(values.len(), 0.0);
        let mut totaloverriddenweight = 0.0;
        let mut totaloverriddengrademax = 0.0;
        for (k, &(i, _)) in values.iter().enumerate() {
            if items[i].weightoverride {
                if items[i].aggregationcoef2 <= 0.0 {
                    userweights[k] = 0.0;
                    continue;
                }
                userweights[k] = if sumweights != 0.0 { items[i].aggregationcoef2 / sumweights } else { 0.0 };
                if extra(i) {
                    continue;
                }
                totaloverriddenweight += userweights[k];
                totaloverriddengrademax += self.user_min_max(i, out).1;
            }
        }
        let nonoverriddenpoints = grademax - totaloverriddengrademax;
        for (k, &(i, _)) in values.iter().enumerate() {
            if !items[i].weightoverride && !extra(i) {
                let umax = self.user_min_max(i, out).1;
                if nonoverriddenpoints > 0.0 {
                    userweights[k] = (umax / nonoverriddenpoints) * (1.0 - totaloverriddenweight);
                } else {
                    userweights[k] = 0.0;
                    if items[i].aggregationcoef2 > 0.0 {
                        grademax -= umax;
                    }
                }
            }
        }
        for (k, &(i, _)) in values.iter().enumerate() {
            if !items[i].weightoverride && extra(i) {
                let umax = self.user_min_max(i, out).1;
                userweights[k] = if grademax != 0.0 { umax / grademax } else { 0.0 };
            }
        }
        let mut sum = 0.0;
        for (k, &(i, v)) in values.iter().enumerate() {
            if extra(i) {
                continue;
            }
            sum += v * userweights[k] * grademax;
        }
        for (k, &(i, v)) in values.iter().enumerate() {
            if !extra(i) {
                continue;
            }
            sum += v * userweights[k] * grademax;
        }
        let grade;
        if grademax > 0.0 {
            grade = sum / grademax;
        } else {
            grade = sum;
            grademax = sum;
        }
        (Some(grade), grademin, grademax)
    }
}
