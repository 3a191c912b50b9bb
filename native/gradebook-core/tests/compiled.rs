//! The compiled course (`gradebook_core::compiled`, the widget's input) through the public API:
//! read back, it regrades like the course it was written from; malformed data is an error, never
//! a panic; the site settings travel with it.

mod round_trip {
    use gradebook_core::{Course, Platform, Regraded};

    const SPEC: &str = r#"{"categories": [{"id": 1, "parent": null, "aggregation": 13},
        {"id": 2, "parent": 1, "aggregation": 10, "droplow": 1}],
      "items": [{"id": 1, "itemtype": "course", "categoryid": 1},
        {"id": 2, "itemtype": "category", "categoryid": 2},
        {"id": 3, "idnumber": "a", "categoryid": 2, "grademax": 20, "aggregationcoef": 2},
        {"id": 4, "idnumber": "b", "categoryid": 2, "aggregationcoef": 1},
        {"id": 5, "itemtype": "manual", "categoryid": 1,
         "calculation": "=round(max([[a]], [[b]]/5) + sin(2)^2 - -1, 2) + if([[a]] > 3, 1, 0)"}]}"#;

    fn run(c: &Course) -> Regraded {
        let cells = [0.0, 0.0, 12.5, 60.0, 0.0];
        let flags = [0, 0, 1, 1, 0];
        gradebook_core::regrade_packed(c, 1, &cells, &flags).unwrap()
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

mod site_settings {
    use gradebook_core::{Course, Platform};

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
        gradebook_core::regrade_packed(c, 1, cells, flags).unwrap().finalgrade
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
