# AWS target (issue 11, AWS half): the aws_* roles and moodle.platform.aws / .aws_destroy against the moto
# AWS emulator on 127.0.0.1 (an emulator, never AWS; no Docker needed). See docs/aws.md.
.PHONY: aws-test
TEST_TARGETS += aws-test

aws-test: setup ## AWS target against the moto AWS emulator: bad input, provision, second run, drift, inventory, teardown
	$(TIMED) aws-emulator $(VENV)/bin/pytest -q -p no:cacheprovider -s tests/aws
