//! The course model: categories, grade items and the Moodle constants they use.  Only data and
//! the queries the regrade needs; reading a course from its JSON description is [`crate::spec`],
//! the compiled form [`crate::compiled`].

use crate::formula::Formula;
use crate::platform::Platform;
use alloc::string::String;
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

impl Course {
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

    /// Whether the item is computed (a category/course total or a calculated item).
    pub(crate) fn needs_compute(&self, i: usize) -> bool {
        let it = &self.items[i];
        it.is_calculated() || it.is_aggregate()
    }

    pub fn describe(&self, i: usize) -> String {
        let it = &self.items[i];
        if it.idnumber.is_empty() {
            cat!("item ", it.id)
        } else {
            cat!("item ", it.id, " [[", it.idnumber, "]]")
        }
    }
}
