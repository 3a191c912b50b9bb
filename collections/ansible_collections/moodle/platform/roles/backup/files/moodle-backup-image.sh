#!/bin/sh
# moodle-backup inside the backup image.
exec python3 /usr/local/lib/moodle-platform/moodle_backup.py "$@"
