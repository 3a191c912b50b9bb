"""Hypothesis strategies for random Moodle gradebooks (course spec + grade matrix)."""

from __future__ import annotations

import json
import struct

from hypothesis import strategies as st

AGGREGATIONS = [0, 2, 4, 6, 8, 10, 11, 12, 13]
HAS, EXCL, OVR, HID = 1, 2, 4, 8

MAXES = [1.0, 5.0, 10.0, 20.0, 33.33333, 50.0, 100.0, 7.5, 0.5, 99999.0]
EXTREMES = [1e-6, 99999.99999]
# Golden cases are regraded by Moodle on MariaDB: no formulas that make Moodle write NaN or throw
# (sqrt/ln of negatives, x^0.5 of negatives, modulo by zero) or report errors (division by zero).
GOLDEN = False


@st.composite
def formula(draw, refs: list[str], depth: int = 0) -> str:
    """An EvalMath expression over [[idnumber]] references."""
    leaves = [st.sampled_from([f"[[{r}]]" for r in refs])] if refs else []
    leaves.append(st.sampled_from(["0", "1", "2", "0.5", "3.25", "100", "1e2", ".5", "7"]))
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(*leaves))
    kind = draw(st.integers(0, 4))
    sub = formula(refs, depth + 1)
    if kind == 0:
        ops = ["+", "-", "*", ">", "<", ">=", "<=", "=="] + ([] if GOLDEN else ["/", "^", "%"])
        op = draw(st.sampled_from(ops))
        return f"{draw(sub)}{op}{draw(sub)}"
    if kind == 1:
        return f"({draw(sub)})"
    if kind == 2:
        return f"-{draw(sub)}"
    if kind == 3:
        fn = draw(st.sampled_from(["sum", "average", "max", "min", "and", "or"]))
        args = draw(st.lists(sub, min_size=1, max_size=4))
        return f"{fn}({', '.join(args)})"
    fns = ["round1", "round2", "if", "abs", "floor", "ceil", "exp", "pi", "sin"]
    if not GOLDEN:
        fns += ["mod", "power", "sqrt", "ln"]
    fn = draw(st.sampled_from(fns))
    if fn == "round1":
        return f"round({draw(sub)})"
    if fn == "round2":
        return f"round({draw(sub)}, {draw(st.integers(-2, 6))})"
    if fn == "if":
        return f"if({draw(sub)}, {draw(sub)}, {draw(sub)})"
    if fn in ("mod", "power"):
        return f"{fn}({draw(sub)}, {draw(sub)})"
    if fn == "pi":
        return "pi()"
    return f"{fn}({draw(sub)})"


@st.composite
def gradebook(draw, max_users: int = 6):
    ncats = draw(st.integers(1, 5))
    cats = []
    for c in range(ncats):
        agg = draw(st.sampled_from(AGGREGATIONS))
        limit = draw(st.sampled_from(["none", "none", "drop", "keep"]))
        cats.append(
            {
                "id": c + 1,
                "parent": None if c == 0 else draw(st.integers(1, c)),
                "aggregation": agg,
                "aggregateonlygraded": draw(st.booleans()),
                "droplow": draw(st.integers(1, 3)) if limit == "drop" else 0,
                "keephigh": draw(st.integers(1, 3)) if limit == "keep" else 0,
            }
        )
    items: list[dict] = []
    next_id = 1
    # Totals first (course, then categories), then graded items in random categories.
    for c in cats:
        items.append(
            {
                "id": next_id,
                "idnumber": f"t{c['id']}",
                "itemtype": "course" if c["parent"] is None else "category",
                "categoryid": c["id"],
                "gradetype": 1,
                "grademin": 0,
                "grademax": draw(st.sampled_from([100.0, 100.0, 10.0, 50.0])),
                "aggregationcoef": draw(st.sampled_from([0.0, 0.0, 1.0, 2.5])),
                "aggregationcoef2": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0])),
                "weightoverride": draw(st.booleans()),
            }
        )
        next_id += 1
    nitems = draw(st.integers(0, 10))
    graded: list[str] = []
    for _ in range(nitems):
        gt = draw(st.sampled_from([1, 1, 1, 1, 2, 0, 3]))
        if gt == 2:
            gmin, gmax = 1.0, float(draw(st.integers(2, 7)))
        else:
            gmax = draw(st.sampled_from(MAXES))
            gmin = draw(st.sampled_from([0.0, 0.0, 0.0, -5.0, 1.0]))
        item = {
            "id": next_id,
            "idnumber": f"i{next_id}",
            "itemtype": draw(st.sampled_from(["mod", "mod", "manual"])),
            "categoryid": draw(st.integers(1, ncats)),
            "gradetype": gt,
            "grademin": gmin,
            "grademax": gmax,
            "multfactor": draw(st.sampled_from([1.0, 1.0, 1.0, 0.5, 1.5])),
            "plusfactor": draw(st.sampled_from([0.0, 0.0, 0.0, 2.0, -1.5])),
            "aggregationcoef": draw(st.sampled_from([0.0, 0.0, 0.0, 1.0, 0.5, 3.0, -1.0])),
            "aggregationcoef2": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.5, 1.0, 1.2])),
            "weightoverride": draw(st.integers(0, 4)) == 0,
            "hidden": draw(st.integers(0, 5)) == 0,
        }
        if draw(st.integers(0, 5)) == 0:
            item["rawgrademin"] = 0.0
            item["rawgrademax"] = draw(st.sampled_from([10.0, 200.0]))
        items.append(item)
        graded.append(item["idnumber"])
        next_id += 1
    # Calculated items reference earlier graded items or earlier calculated ones (acyclic).
    ncalc = draw(st.integers(0, 3))
    for _ in range(ncalc):
        refs = draw(st.lists(st.sampled_from(graded), max_size=3, unique=True)) if graded else []
        items.append(
            {
                "id": next_id,
                "idnumber": f"c{next_id}",
                "itemtype": "manual",
                "categoryid": draw(st.integers(1, ncats)),
                "gradetype": 1,
                "grademin": draw(st.sampled_from([0.0, -10.0])),
                "grademax": draw(st.sampled_from([100.0, 10.0, 1000.0])),
                "aggregationcoef": draw(st.sampled_from([0.0, 1.0])),
                "aggregationcoef2": draw(st.sampled_from([0.0, 0.2])),
                "calculation": "=" + draw(formula(refs)),
            }
        )
        graded.append(f"c{next_id}")
        next_id += 1
    # Shuffle the sort order (a category total may sit anywhere in its parent).
    order = draw(st.permutations(range(len(items))))
    items = [items[k] for k in order]
    course = {"categories": cats, "items": items}

    nusers = draw(st.integers(0, max_users))
    cells: list[float] = []
    flags = bytearray()
    for _u in range(nusers):
        for it in items:
            f = 0
            v = 0.0
            if draw(st.integers(0, 4)) != 0:
                f |= HAS
                lo = it.get("rawgrademin", it["grademin"])
                hi = it.get("rawgrademax", it["grademax"])
                v = draw(
                    st.one_of(
                        st.sampled_from([lo, hi, 0.0, (lo + hi) / 2, hi + 3, lo - 1, *EXTREMES]),
                        st.floats(min_value=min(lo, hi), max_value=max(lo, hi), allow_nan=False),
                    )
                )
            if draw(st.integers(0, 9)) == 0:
                f |= EXCL
            if draw(st.integers(0, 19)) == 0:
                f |= OVR
            if draw(st.integers(0, 9)) == 0:
                f |= HID
            cells.append(v)
            flags.append(f)
    # Site settings (`unlimitedgrades` with `gradeoverhundredprocentmax`, the course's effective
    # `minmaxtouse`): mostly Moodle's defaults.
    site = draw(
        st.sampled_from(
            [
                None,
                None,
                None,
                {"unlimitedgrades": True},
                {"unlimitedgrades": True, "gradeoverhundredprocentmax": 2},
                {"unlimitedgrades": True, "gradeoverhundredprocentmax": 1.5},
                {"unlimitedgrades": False, "gradeoverhundredprocentmax": 3},
            ]
        )
    )
    minmaxtouse = draw(st.sampled_from([None, None, 1, 2, 2]))
    if minmaxtouse is not None:
        site = dict(site or {}, minmaxtouse=minmaxtouse)
    if site is not None:
        course["site"] = site
    return json.dumps(course), struct.pack(f"<{len(cells)}d", *cells), bytes(flags), nusers
