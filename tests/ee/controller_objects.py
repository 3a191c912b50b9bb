"""Helpers shared by the controller-object tests: the data, the awx.awx modules' options, the playbooks' roles.

No AWX server runs here: what the controller would do with the objects is reproduced from the awx.awx
modules' own documentation (their option specs) and the roles' meta/argument_specs.yml.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ansible_collections
import jinja2.nativetypes
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/moodle/platform"
OBJECTS_FILE = COLLECTION / "playbooks/vars/controller_objects.yml"
ROLE = COLLECTION / "roles/controller"
AWX = next(p for p in map(Path, ansible_collections.__path__) if (p / "awx/awx").is_dir()) / "awx/awx"

# infra.aap_configuration variable -> the awx.awx module that applies its items (roles/controller/tasks/main.yml)
MODULES = {
    "controller_execution_environments": "execution_environment",
    "controller_credential_types": "credential_type",
    "controller_credentials": "credential",
    "controller_notifications": "notification_template",
    "controller_projects": "project",
    "controller_inventories": "inventory",
    "controller_inventory_sources": "inventory_source",
    "controller_templates": "job_template",
    "controller_schedules": "schedule",
}


def raw_objects() -> dict:
    return yaml.safe_load(OBJECTS_FILE.read_text())


def objects(**overrides) -> dict:
    """The data as Ansible would template it (scalars first, then the lists that use them)."""
    data = raw_objects()
    data.update(overrides)
    # Native types, like Ansible: "{{ a_list }}" is that list, not its text.
    env = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)

    def render(value, context):
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            return env.from_string(value).render(context)
        if isinstance(value, list):
            return [render(v, context) for v in value]
        if isinstance(value, dict):
            return {k: render(v, context) for k, v in value.items()}
        return value

    scalars = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    scalars = {k: render(v, scalars) for k, v in scalars.items()}
    return {k: render(v, {**data, **scalars}) for k, v in data.items()}


def module_doc(module: str) -> dict:
    """DOCUMENTATION of an awx.awx module, with the options of its doc fragments merged in."""
    tree = ast.parse((AWX / "plugins/modules" / f"{module}.py").read_text())
    doc = next(n.value.value for n in tree.body
               if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "DOCUMENTATION")
    data = yaml.safe_load(doc)
    options = dict(data["options"])
    fragments = data.get("extends_documentation_fragment") or []
    for fragment in [fragments] if isinstance(fragments, str) else fragments:
        name = fragment.split(".")[-1]
        ftree = ast.parse((AWX / "plugins/doc_fragments" / f"{name}.py").read_text())
        for node in ast.walk(ftree):
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
                options.update(yaml.safe_load(node.value.value).get("options") or {})
    data["options"] = options
    return data


def _playbook_file(name: str, base: Path) -> Path:
    if name.startswith("moodle.platform."):
        return COLLECTION / "playbooks" / f"{name.split('.')[-1]}.yml"
    return (base / name).resolve()


def playbook_roles(path: Path) -> set[tuple[str, str]]:
    """(role, entry point) pairs a playbook runs, following import_playbook (FQCN or relative)."""
    found: set[tuple[str, str]] = set()
    for play in yaml.safe_load(path.read_text()):
        if "ansible.builtin.import_playbook" in play:
            found |= playbook_roles(_playbook_file(play["ansible.builtin.import_playbook"], path.parent))
            continue
        for role in play.get("roles") or []:
            found.add((role["role"] if isinstance(role, dict) else role, "main"))
        for section in ("pre_tasks", "tasks", "post_tasks"):
            for task in play.get(section) or []:
                for action in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                    if action in task:
                        args = task[action]
                        found.add((args["name"], args.get("tasks_from", "main")))
    return found


def role_options(role: str, entry_point: str) -> dict:
    name = role.split(".")[-1]
    specs = yaml.safe_load((COLLECTION / "roles" / name / "meta/argument_specs.yml").read_text())["argument_specs"]
    return (specs.get(entry_point) or specs["main"]).get("options") or {}


SPEC_KEYS = {"type", "choices", "elements", "required", "default", "aliases", "no_log"}


def argument_spec(options: dict) -> dict:
    """An AnsibleModule argument_spec from DOCUMENTATION options (types, choices, suboptions)."""
    spec = {}
    for name, doc in options.items():
        entry = {k: v for k, v in doc.items() if k in SPEC_KEYS}
        entry.pop("default", None)  # defaults do not matter for validating given values
        if "suboptions" in doc:
            entry["options"] = argument_spec(doc["suboptions"])
        spec[name] = entry
    return spec
