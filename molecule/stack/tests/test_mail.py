"""Mail round trip: the site sends through the SMTP settings of config.php, Mailpit (dev overlay) receives.

The scenario (../molecule.yml) configures the relay as code -- host `mailpit`, port 1025, no TLS, PLAIN
authentication, the password in the smtp_password secret -- and Mailpit then accepts only that user and
password, so a mail that arrives proves the whole path: secret file -> config.php -> SMTP AUTH."""

import hashlib
import json
import os
import urllib.request
import uuid

from stack_helpers import PROJECT_DIR, exec_out, wait_for

MAILPIT_API = os.environ.get("MOODLE_STACK_MAILPIT_URL", "http://127.0.0.1:8382") + "/api/v1"
MAIL_USER = "moodleci-mailer"
NOREPLY = "noreply-ci@moodle-platform.test"
SEND = "/var/www/moodle/admin/cli/standin_send_mail.php"


def _mailpit(path):
    with urllib.request.urlopen(MAILPIT_API + path, timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)


def _find(subject):
    return [m for m in _mailpit("/messages?limit=500")["messages"] if m["Subject"] == subject]


def _send(web, to, subject, environment=None):
    return exec_out(
        web,
        ["php", SEND, f"--to={to}", f"--subject={subject}", "--body=Round trip from the site."],
        user="www-data",
        environment=environment,
    )


def test_the_site_reads_the_smtp_settings_moodle_reads_from_config_php(container):
    script = (
        "define('CLI_SCRIPT', true); require '/var/www/moodle/config.php'; echo json_encode(["
        "$CFG->smtphosts, $CFG->smtpsecure, $CFG->smtpauthtype, $CFG->smtpuser, hash('sha256', $CFG->smtppass), "
        "$CFG->noreplyaddress]);"
    )
    rc, out = exec_out(container("web"), ["php", "-r", script], user="www-data")
    assert rc == 0, out
    with open(os.path.join(PROJECT_DIR, "secrets", "smtp_password")) as handle:
        password = handle.read()
    assert len(password) >= 16
    assert json.loads(out) == ["mailpit:1025", "", "PLAIN", MAIL_USER, hashlib.sha256(password.encode()).hexdigest(), NOREPLY]
    # The password reaches PHP through the secret file only: not in any container's environment.
    for service in ("web", "cron", "mailpit"):
        assert password not in json.dumps(container(service).attrs), service


def test_a_mail_sent_by_the_site_is_read_back_through_mailpits_api(container):
    subject = f"moodleci round trip {uuid.uuid4()}"
    recipient = "student-ci@moodle-platform.test"
    rc, out = _send(container("web"), recipient, subject)
    assert rc == 0, out
    found = wait_for(lambda: _find(subject), timeout=20, interval=1)
    assert len(found) == 1, found
    message = found[0]
    assert [to["Address"] for to in message["To"]] == [recipient]
    assert message["From"]["Address"] == NOREPLY  # Moodle's noreplyaddress, as set in the role
    assert message["Username"] == MAIL_USER  # it authenticated, with the password from the secret file
    full = _mailpit(f"/message/{message['ID']}")
    assert "Round trip from the site." in full["Text"]


def test_mailpit_refuses_credentials_other_than_the_configured_ones(container):
    """Negative control: the same send with another SMTP user is refused, so the first test's success
    means Mailpit checked the user and password that config.php gave."""
    subject = f"moodleci refused {uuid.uuid4()}"
    rc, out = _send(
        container("web"), "student-ci@moodle-platform.test", subject, environment={"MOODLE_SMTP_USER": "someone-else"}
    )
    assert rc == 1, out
    assert "not sent" in out and "535" in out  # the relay's "credentials invalid", from the stand-in's client
    assert _find(subject) == []
