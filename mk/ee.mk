# Execution Environment and AWX / AAP job templates as code (issue 16 parts 4-5). See docs/awx.md.
.PHONY: ee-image ee-test controller-apply
TEST_TARGETS += ee-test

ee-image: setup host ## EE image moodle-platform/ee:<content hash> (ansible-builder, offline; cached: ~1 s warm)
	$(TIMED) ee-image $(PY) scripts/ee/build.py

# Static checks (introspection, controller objects vs awx.awx and the roles' argument_specs) need no
# engine; the job templates run through ansible-runner + the EE image inside the day-2 stack suite
# (tests/day2/test_awx_job_templates.py), which shares that suite's one stand-in deployment.
ee-test: setup ee-image ## ansible-builder introspect + controller objects checked against awx.awx and the roles
	$(TIMED) ee-static pytest -q -p no:cacheprovider tests/ee

day2-stack-test: ee-image

# Apply the controller objects to a real AWX / Automation Platform:
#   make controller-apply CONTROLLER_HOST=https://aap.example.org CONTROLLER_USERNAME=admin CONTROLLER_PASSWORD=...
# (or CONTROLLER_OAUTH_TOKEN=...); CONTROLLER_OBJECTS=/path/to/objects.yml replaces the collection's data.
controller-apply: setup ## Create/update the job templates, surveys, schedules ... on CONTROLLER_HOST
	@test -n "$${CONTROLLER_HOST:-}" || { echo "controller-apply: set CONTROLLER_HOST (and credentials)" >&2; exit 2; }
	$(TIMED) controller-apply ansible-playbook moodle.platform.controller \
	  $(if $(CONTROLLER_OBJECTS),-e controller_objects_file=$(abspath $(CONTROLLER_OBJECTS)))
