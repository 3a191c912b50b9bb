"""moodle.platform Kubernetes operator (kopf): MoodleSite, Backup and UpgradePlan.

Layout: pure functions compute desired state (``desired``, ``backups``, ``upgrade``); ``kube`` and
``render`` do the I/O; ``handlers`` wires them to kopf and stays thin.
"""

GROUP = "platform.moodle.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ROLLBACK_ANNOTATION = f"{GROUP}/rollback"
SITE_LABEL = f"{GROUP}/site"
FIELD_MANAGER = "moodle-operator"
