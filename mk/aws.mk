# AWS target (issue 11): the aws_* roles, moodle.platform.aws / .aws_hosts / .aws_destroy and .site (target aws)
# against the moto AWS emulator on 127.0.0.1 (tests/aws/emulator.py: an emulator, never AWS; no Docker needed).
# See docs/aws.md.
.PHONY: aws-test
TEST_TARGETS += aws-test

aws-test: setup ## AWS target against the moto AWS emulator: bad input, provision, second run = site with host wiring, drift, inventory, teardown
	$(TIMED) aws-emulator $(VENV)/bin/pytest -q -p no:cacheprovider -s tests/aws
