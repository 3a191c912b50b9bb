"""The AWX / AAP objects (playbooks/vars/controller_objects.yml) are valid without a controller.

* every object validates against the argument spec of the awx.awx module that applies it (built from
  the module's own DOCUMENTATION, doc fragments included) and the role passes every key it is given;
* every survey question is an option of a role the template's playbook runs, with a compatible type,
  choices inside the role's choices and the role's own default;
* names the objects refer to exist, and schedules only send variables their template's survey asks.
The checks are shown to fail on broken data too.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
from controller_objects import (
    MODULES,
    ROLE,
    ROOT,
    argument_spec,
    module_doc,
    objects,
    playbook_roles,
    role_options,
)

SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
CONVERT = {"bool": check_type_bool, "int": check_type_int, "float": check_type_float}


def object_problems(data: dict) -> list[str]:
    problems = []
    for var, module in MODULES.items():
        spec = argument_spec(module_doc(module)["options"])
        for item in data.get(var, []):
            result = ArgumentSpecValidator(spec).validate(copy.deepcopy(item))
            problems += [f"{var}[{item.get('name')}] (awx.awx.{module}): {msg}" for msg in result.error_messages]
    return problems


def survey_problems(template: dict) -> list[str]:
    if not template.get("survey_enabled"):
        return []
    roles = playbook_roles(ROOT / template["playbook"])
    options = {}
    for role, entry_point in sorted(roles):
        options.update(role_options(role, entry_point))
    problems = []
    for question in template["survey_spec"]["spec"]:
        var, kind = question["variable"], question["type"]
        where = f"{template['name']}: survey variable {var}"
        if kind not in SURVEY_TYPES:
            problems.append(f"{where}: AWX has no survey type {kind}")
        option = options.get(var)
        if option is None:
            problems.append(f"{where} is no option of {sorted(r for r, _ in roles)}")
            continue
        otype = option.get("type", "str")
        if kind in ("multiplechoice", "multiselect"):
            choices = question["choices"]
            choices = choices.split("\n") if isinstance(choices, str) else choices
            if question.get("default") not in choices:
                problems.append(f"{where}: default {question.get('default')!r} is not one of its choices")
            if otype == "bool":
                try:
                    converted = {check_type_bool(c) for c in choices}
                except TypeError as exc:
                    problems.append(f"{where}: choices must be booleans: {exc}")
                    continue
                if converted != {True, False} or len(choices) != 2:
                    problems.append(f"{where}: a bool option needs the choices true and false, got {choices}")
            elif option.get("choices") and not set(choices) <= {str(c) for c in option["choices"]}:
                problems.append(f"{where}: choices {choices} are not within the role's {option['choices']}")
        elif kind in ("text", "textarea", "password") and otype not in ("str", "path", "raw"):
            problems.append(f"{where}: a {kind} answer cannot fill a {otype} option")
        elif kind in ("integer", "float") and otype != {"integer": "int", "float": "float"}[kind]:
            problems.append(f"{where}: a {kind} answer cannot fill a {otype} option")
        # The default the survey offers is the role's own (when that is a plain value).
        role_default = option.get("default")
        if role_default is not None and not (isinstance(role_default, str) and "{{" in role_default):
            offered = question.get("default")
            try:
                offered = CONVERT[otype](offered) if otype in CONVERT else offered
            except TypeError as exc:
                problems.append(f"{where}: default {offered!r} is no {otype}: {exc}")
                continue
            if offered != role_default:
                problems.append(f"{where}: default {offered!r} differs from the role's {role_default!r}")
    return problems


# ------------------------------------------------------------------------------------------------
def test_every_object_validates_against_its_awx_module():
    assert object_problems(objects()) == []


def test_the_object_check_catches_wrong_keys_and_values():
    data = objects()
    data["controller_templates"][0]["playbok"] = "site.yml"          # typo
    data["controller_templates"][1]["job_type"] = "dry-run"           # not a choice
    data["controller_projects"][0]["scm_update_on_launch"] = "often"  # not a bool
    problems = "\n".join(object_problems(data))
    assert "playbok" in problems
    assert "job_type" in problems
    assert "scm_update_on_launch" in problems


def test_the_role_passes_every_key_the_data_uses():
    tasks = yaml.safe_load((ROLE / "tasks/main.yml").read_text())[0]["block"]
    data = objects()
    for task in tasks:
        action = next(k for k in task if k.startswith("awx.awx."))
        var = re.fullmatch(r"\{\{ (\w+) \}\}", task["loop"]).group(1)
        assert MODULES[var] == action.split(".")[-1], f"{var} must be applied with awx.awx.{MODULES[var]}"
        passed = {m for value in task[action].values() for m in re.findall(r"item\.(\w+)", str(value))}
        assert set(task[action]) == passed, f"{action}: each option is filled from the item key of the same name"
        for item in data[var]:
            assert set(item) <= passed, f"{var}[{item.get('name')}]: {set(item) - passed} would be dropped"
    assert {re.fullmatch(r"\{\{ (\w+) \}\}", t["loop"]).group(1) for t in tasks} == set(MODULES)


def test_surveys_mirror_the_roles_argument_specs():
    templates = objects()["controller_templates"]
    assert {t["name"] for t in templates} == {
        "Moodle - Deploy", "Moodle - Backup now", "Moodle - Restore drill", "Moodle - Restore",
        "Moodle - Upgrade plan", "Moodle - Upgrade apply", "Moodle - Database upgrade plan",
        "Moodle - Database upgrade apply", "Moodle - Migrate"}
    problems = [p for t in templates for p in survey_problems(t)]
    assert problems == []
    asked = {q["variable"] for t in templates if t.get("survey_enabled") for q in t["survey_spec"]["spec"]}
    assert {"restore_backup_id", "upgrade_image", "migrate_dry_run", "backup_drill_after_backup",
            "service_images_mariadb_version", "db_upgrade_rollback"} <= asked


def test_the_survey_check_catches_drift():
    templates = {t["name"]: t for t in objects()["controller_templates"]}
    restore = copy.deepcopy(templates["Moodle - Restore"])
    restore["survey_spec"]["spec"][0]["variable"] = "restore_backup"                 # no such option
    restore["survey_spec"]["spec"][1]["choices"] = ["yes please", "no"]                # not booleans
    restore["survey_spec"]["spec"][2]["default"] = "true"                              # role default is false
    problems = "\n".join(survey_problems(restore))
    assert "restore_backup is no option" in problems
    assert "restore_safety_backup: choices must be booleans" in problems
    assert "restore_force: default True differs from the role's False" in problems


def test_references_resolve_and_schedules_send_only_survey_variables():
    data = objects()
    names = {var: {item["name"] for item in data[var]} for var in MODULES}
    for template in data["controller_templates"]:
        assert template["project"] in names["controller_projects"]
        assert template["inventory"] in names["controller_inventories"]
        assert template["execution_environment"] in names["controller_execution_environments"]
        assert set(template["notification_templates_error"]) <= names["controller_notifications"]
        assert (ROOT / template["playbook"]).is_file(), f"{template['playbook']} must be in the project"
    for source in data["controller_inventory_sources"]:
        assert source["source_project"] in names["controller_projects"]
        assert (ROOT / source["source_path"]).is_file()
    templates = {t["name"]: t for t in data["controller_templates"]}
    for schedule in data["controller_schedules"]:
        template = templates[schedule["unified_job_template"]]
        survey = {q["variable"] for q in template["survey_spec"]["spec"]}
        # AWX refuses schedule variables that are neither survey answers nor allowed on launch
        assert set(schedule.get("extra_data", {})) <= survey, schedule["name"]
        assert schedule["rrule"].startswith("DTSTART") and "RRULE:FREQ=" in schedule["rrule"]
    for ctype in data["controller_credential_types"]:
        fields = {f["id"] for f in ctype["inputs"]["fields"]}
        used = {m for v in ctype["injectors"]["extra_vars"].values() for m in re.findall(r"\{\{ (\w+) \}\}", str(v))}
        assert used <= fields, f"{ctype['name']}: injectors use {used - fields}, which are no inputs"
        for var in ctype["injectors"]["extra_vars"]:
            role = var.split("_")[0] if not var.startswith("compose_stack") else "compose_stack"
            assert var in role_options(f"moodle.platform.{role}", "main"), f"{var} is no option of {role}"


@pytest.mark.parametrize("name", ["Moodle - Upgrade plan"])
def test_plan_templates_run_in_check_mode(name):
    template = next(t for t in objects()["controller_templates"] if t["name"] == name)
    assert template["job_type"] == "check"


def test_database_upgrade_plan_template_stops_after_the_plan():
    """Run mode (the plan needs the new image built), with the role's plan-only switch; the apply template
    runs the same playbook without it (the playbook itself runs in `make db-upgrade-test`)."""
    templates = {t["name"]: t for t in objects()["controller_templates"]}
    plan, apply = templates["Moodle - Database upgrade plan"], templates["Moodle - Database upgrade apply"]
    assert plan["extra_vars"] == {"db_upgrade_plan_only": True}
    assert "db_upgrade_plan_only" in role_options("moodle.platform.db_upgrade", "main")
    assert plan["playbook"] == apply["playbook"] and "extra_vars" not in apply
