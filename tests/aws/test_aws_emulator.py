"""The AWS target against the moto AWS emulator (never AWS): bad input refused before any change, full
provision, second run, drift reported in check mode and repaired, the aws_ec2 inventory, teardown.

The whole moodle.platform.site with target aws: provision, then the wiring of every Docker host of the Auto
Scaling group (what compose_stack and aws_docker_host get), up to the first task that needs a host - the
emulator's instances are records, nothing runs on them.

Emulator gaps (docs/aws.md, "What was only tested against the emulator"): the EFS tag API and the RDS parameter
catalogue come from the extensions in emulator.py (the catalogue is a stand-in excerpt), gp3 storage is
replaced by gp2 (EMULATOR_GAPS), and two tasks report changed on every run for emulator reasons
(KNOWN_EMULATOR_CHANGES). The tests are ordered: they share one provisioned site.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
import yaml

from conftest import REGION, ROOT, VENV_BIN, run_playbook

SITE = "emu"
CATALOGUE = json.loads((ROOT / "tests/aws/rds_parameter_catalogue.json").read_text())["families"]
# Switches for what the emulator cannot model (each explained in docs/aws.md).
EMULATOR_GAPS = {
    # moto does not return StorageThroughput for gp3, which amazon.aws.rds_instance reads on its second run.
    "aws_data_db_storage_type": "gp2",
}
# Reported changed on every run against the emulator only:
KNOWN_EMULATOR_CHANGES = {
    # moto files NAT gateway tags under resource type 'nat-gateway', AWS under 'natgateway' (the module's
    # filter), so the module sees no tags and sets them again.
    "moodle.platform.aws_network : NAT gateways (in the public subnets)",
    # amazon.aws.autoscaling_group with tags reports changed against moto on every run (cause not isolated;
    # without tags it reports no change).
    "moodle.platform.aws_compute : Auto Scaling group of the Docker hosts (private subnets, behind the load balancer)",
}
STATE = {}


def site_vars(emulator, **extra):
    return {"moodle_platform_aws_region": REGION, "moodle_platform_aws_site": SITE,
            "aws_compute_ami_owner": emulator["account"], "aws_compute_certificate_arn": emulator["certificate"],
            "aws_data_backup_bucket": f"{SITE}-backups", "aws_compute_ssm_transfer_bucket": f"{SITE}-ssm-transfer",
            **EMULATOR_GAPS, **extra}


def inventory_of_resources(emulator):
    """What exists in the emulator (the 'nothing was created' check of the bad-input cases)."""
    c = emulator["client"]
    return {
        "vpcs": sorted(v["VpcId"] for v in c("ec2").describe_vpcs()["Vpcs"] if not v.get("IsDefault")),
        "security_groups": len(c("ec2").describe_security_groups()["SecurityGroups"]),
        "secrets": sorted(s["Name"] for s in c("secretsmanager").list_secrets()["SecretList"]),
        "db": sorted(d["DBInstanceIdentifier"] for d in c("rds").describe_db_instances()["DBInstances"]),
        "buckets": sorted(b["Name"] for b in c("s3").list_buckets().get("Buckets", [])),
        "roles": sorted(r["RoleName"] for r in c("iam").list_roles()["Roles"]),
    }


BAD_INPUTS = [
    ("overlapping subnets", {"aws_network_private_subnet_cidrs": ["10.40.0.128/25", "10.40.11.0/24"]},
     "10.40.0.0/24 overlaps 10.40.0.128/25"),
    ("subnet outside the VPC", {"aws_network_public_subnet_cidrs": ["10.41.0.0/24", "10.40.1.0/24"]},
     "10.41.0.0/24 is outside the VPC"),
    ("one zone for Multi-AZ", {"aws_network_availability_zones": [f"{REGION}a"]},
     "must name at least that many zones (got 1)"),
    ("az count 1", {"aws_network_az_count": 1}, "aws_network_az_count must be one of: 2, 3"),
    ("SSH from the internet", {"aws_network_admin_cidrs": ["0.0.0.0/0"]},
     "may not open SSH to the whole internet (0.0.0.0/0)"),
    ("MySQL engine", {"aws_data_db_engine": "mysql"}, "aws_data_db_engine must be one of: mariadb, postgres"),
    ("MariaDB too old for Moodle 4.5", {"aws_data_db_engine_version": "10.5.27"},
     "Moodle 4.5 supports mariadb 10.6.7 or later"),
    ("PostgreSQL too old for Moodle 4.5", {"aws_data_db_engine": "postgres", "aws_data_db_engine_version": "12.22"},
     "Moodle 4.5 supports postgres 13 or later"),
    ("placeholder password in prod", {"aws_secrets_values": {"db_master_password": "CHANGE-ME"}},
     "db_master_password in aws_secrets_values is a placeholder"),
    ("HTTPS without certificate", {"aws_compute_certificate_arn": ""},
     "the HTTPS listener needs aws_compute_certificate_arn"),
    ("backups off", {"aws_data_db_backup_retention_days": 0}, "automated backups cannot be off"),
    ("desired above max", {"aws_compute_desired_capacity": 6}, "<= desired (6) <= max (4)"),
    ("unknown secret key", {"aws_secrets_values": {"db_password": "x" * 20}},
     "aws_secrets_values may only hold db_master_password, redis_auth_token, moodle_admin_password"),
    ("no region", {"moodle_platform_aws_region": ""}, "moodle_platform_aws_region must name an AWS region"),
]


@pytest.mark.parametrize(("case", "extra", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_before_any_change(emulator, tmp_path, case, extra, message):
    before = inventory_of_resources(emulator)
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws", site_vars(emulator, **extra))
    flat = " ".join(out.split())
    assert rc != 0, flat[-2000:]
    assert message in flat, flat[-3000:]
    assert changed == [], changed
    assert "PLAY [Provision the AWS resources" not in out
    assert inventory_of_resources(emulator) == before


def test_hosts_are_not_wired_without_provisioning(emulator, tmp_path):
    """moodle.platform.aws_hosts alone (no provisioning in the run) refuses before it touches a host."""
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("docker_hosts:\n  hosts:\n    i-0123456789abcdef0:\n      ansible_connection: ssh\n"
                     "      ansible_host: 127.0.0.1\n      ansible_port: 9\n")
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws_hosts", site_vars(emulator), inventories=[hosts])
    flat = " ".join(out.split())
    assert rc != 0 and changed == []
    assert "wires the Docker hosts from what moodle.platform.aws provisioned in the same run" in flat, flat[-2000:]
    assert "UNREACHABLE" not in out


def test_check_mode_of_a_new_site_reports_and_creates_nothing(emulator, tmp_path):
    before = inventory_of_resources(emulator)
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws", site_vars(emulator), check=True)
    assert rc == 0, out[-4000:]
    assert "check mode: VPC emu does not exist; it and its subnets, gateways and security groups would be created" \
        in " ".join(out.split())
    assert "moodle.platform.aws_network : VPC" in changed
    assert inventory_of_resources(emulator) == before


def test_full_provision(emulator, tmp_path):
    rc, out, changed, seconds = run_playbook(emulator, tmp_path, "aws", site_vars(emulator))
    assert rc == 0, out[-4000:]
    STATE["provision_seconds"] = seconds
    print(f"\nprovision against the moto AWS emulator: {seconds:.0f} s, {len(changed)} tasks changed")
    c = emulator["client"]
    ec2 = c("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:moodle-platform-site", "Values": [SITE]}])["Vpcs"]
    assert len(vpc) == 1
    vpc_id = vpc[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert len(subnets) == 4 and len({s["AvailabilityZone"] for s in subnets}) == 2
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]}
    web = groups[f"{SITE}-web"]["IpPermissions"]
    assert [(p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"]) for p in web] == \
        [(443, [groups[f"{SITE}-alb"]["GroupId"]], [])]
    for name, port in (("db", 3306), ("cache", 6379), ("efs", 2049)):
        perms = groups[f"{SITE}-{name}"]["IpPermissions"]
        assert [(p["FromPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]], p["IpRanges"]) for p in perms] == \
            [(port, [groups[f"{SITE}-web"]["GroupId"]], [])]
    db = c("rds").describe_db_instances(DBInstanceIdentifier=f"{SITE}-db")["DBInstances"][0]
    _check_parameter_group(c("rds"), db)
    _check_efs(c, groups[f"{SITE}-efs"]["GroupId"], vpc_id)
    assert (db["Engine"], db["EngineVersion"], db["MultiAZ"], db["StorageEncrypted"], db["DeletionProtection"],
            db["BackupRetentionPeriod"], db["PubliclyAccessible"]) == ("mariadb", "11.4.5", True, True, True, 7, False)
    redis = c("elasticache").describe_replication_groups(ReplicationGroupId=f"{SITE}-redis")["ReplicationGroups"][0]
    assert redis["TransitEncryptionEnabled"] and redis["AtRestEncryptionEnabled"] and redis["AuthTokenEnabled"]
    s3 = c("s3")
    assert s3.get_bucket_versioning(Bucket=f"{SITE}-backups")["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=f"{SITE}-backups")["PublicAccessBlockConfiguration"].values())
    rules = s3.get_bucket_lifecycle_configuration(Bucket=f"{SITE}-backups")["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 60
    asg = c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{SITE}-docker-hosts"])
    assert len(asg["AutoScalingGroups"][0]["Instances"]) == 2
    lb = c("elbv2").describe_load_balancers(Names=[f"{SITE}-alb"])["LoadBalancers"][0]
    listeners = {listener["Port"]: listener for listener in
                 c("elbv2").describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert listeners[443]["Certificates"][0]["CertificateArn"] == emulator["certificate"]
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    tg = c("elbv2").describe_target_groups(Names=[f"{SITE}-web"])["TargetGroups"][0]
    assert (tg["HealthCheckPath"], tg["Protocol"], tg["Port"]) == ("/login/index.php", "HTTPS", 443)
    policy = c("iam").get_role_policy(RoleName=f"{SITE}-docker-host", PolicyName="backup-bucket")["PolicyDocument"]
    assert {r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])} \
        == {f"arn:aws:s3:::{SITE}-backups", f"arn:aws:s3:::{SITE}-backups/*", f"arn:aws:s3:::{SITE}-ssm-transfer",
            f"arn:aws:s3:::{SITE}-ssm-transfer/*"}
    assert s3.get_bucket_lifecycle_configuration(Bucket=f"{SITE}-ssm-transfer")["Rules"][0]["Expiration"]["Days"] == 1
    efs_policy = c("iam").get_role_policy(RoleName=f"{SITE}-docker-host", PolicyName="moodledata-efs")["PolicyDocument"]
    (statement,) = efs_policy["Statement"]
    assert statement["Resource"] == STATE["efs_arn"]
    assert sorted(statement["Action"]) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    assert statement["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": STATE["access_point_arn"]}}
    # Secrets: generated once, stored, never printed.
    sm = c("secretsmanager")
    for key in ("db_master_password", "redis_auth_token", "moodle_admin_password"):
        value = sm.get_secret_value(SecretId=f"moodle-platform/{SITE}/{key}")["SecretString"]
        assert len(value) == 32 and value not in out
    STATE["db_password"] = sm.get_secret_value(SecretId=f"moodle-platform/{SITE}/db_master_password")["SecretString"]
    STATE["provisioned"] = True


def _check_parameter_group(rds, db):
    """The site's own parameter group is attached and carries Moodle's settings; every value is one the
    (stand-in) catalogue allows for the parameter."""
    (group,) = [g["DBParameterGroupName"] for g in db["DBParameterGroups"]]
    assert group == f"{SITE}-mariadb11-4"
    family = rds.describe_db_parameter_groups(DBParameterGroupName=group)["DBParameterGroups"][0]["DBParameterGroupFamily"]
    assert family == "mariadb11.4"
    params = {p["ParameterName"]: p for p in rds.describe_db_parameters(DBParameterGroupName=group)["Parameters"]}
    values = {name: p.get("ParameterValue") for name, p in params.items()}
    for name, want in {"character_set_server": "utf8mb4", "character_set_client": "utf8mb4",
                       "character_set_connection": "utf8mb4", "character_set_database": "utf8mb4",
                       "character_set_results": "utf8mb4", "collation_server": "utf8mb4_unicode_ci",
                       "collation_connection": "utf8mb4_unicode_ci", "max_connections": "300",
                       "require_secure_transport": "1", "innodb_file_per_table": "1"}.items():
        assert values[name] == want, (name, values[name])
    catalogue = {p["ParameterName"]: p for p in CATALOGUE[family]}
    for name, param in params.items():
        if param.get("Source") == "engine-default":
            continue
        allowed = catalogue[name]["AllowedValues"]
        if catalogue[name]["DataType"] == "integer":
            low, high = re.match(r"^(-?[0-9]+)-([0-9]+)$", allowed).groups()
            assert int(low) <= int(param["ParameterValue"]) <= int(high), (name, param["ParameterValue"])
        else:
            assert param["ParameterValue"] in allowed.split(","), (name, param["ParameterValue"])
        # Static parameters wait for the next reboot (the role does not restart a running database).
        assert param["ApplyMethod"] == "pending-reboot", (name, param)


def _check_efs(client, efs_group, vpc_id):
    """EFS: encrypted, a mount target in each private subnet behind the efs security group, an access point that
    presents uid/gid 33 and creates its root directory for them."""
    efs = client("efs")
    (fs,) = efs.describe_file_systems(CreationToken=f"{SITE}-moodledata")["FileSystems"]
    assert fs["Encrypted"] and fs["LifeCycleState"] == "available"
    assert {t["Key"]: t["Value"] for t in efs.describe_tags(FileSystemId=fs["FileSystemId"])["Tags"]} == \
        {"Name": f"{SITE}-moodledata", "moodle-platform-site": SITE}
    private = {s["SubnetId"] for s in client("ec2").describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag:Name", "Values": [f"{SITE}-private-*"]}])["Subnets"]}
    targets = efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]
    assert {t["SubnetId"] for t in targets} == private and len(private) == 2
    for target in targets:
        assert efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])["SecurityGroups"] == \
            [efs_group]
    (point,) = efs.describe_access_points(FileSystemId=fs["FileSystemId"])["AccessPoints"]
    assert {k: int(v) for k, v in point["PosixUser"].items()} == {"Uid": 33, "Gid": 33}
    assert point["RootDirectory"]["Path"] == "/moodledata"
    assert int(point["RootDirectory"]["CreationInfo"]["OwnerUid"]) == 33
    STATE.update(efs_id=fs["FileSystemId"], efs_arn=fs["FileSystemArn"], access_point_id=point["AccessPointId"],
                 access_point_arn=point["AccessPointArn"])


def test_second_run_is_the_whole_site_changes_nothing_and_wires_every_host(emulator, tmp_path):
    """The second run is moodle.platform.site (target aws, deploy on; one run serves both checks, CI time): the
    provisioning changes nothing but the known emulator changes, and each Docker host gets compose_stack's and
    aws_docker_host's variables, compared with the emulator's own answers."""
    assert STATE.get("provisioned"), "needs test_full_provision"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed_port = sock.getsockname()[1]
    sock.close()
    # Instead of SSM: SSH to a closed port, so the first task that needs a host fails at once (UNREACHABLE).
    inventory = _ec2_inventory(tmp_path, ansible_connection="'ssh'", ansible_host="'127.0.0.1'",
                               ansible_port=str(closed_port), ansible_aws_ssm_bucket_name="''")
    # The test's callback records each host's variables when it turns out unreachable (the emulator's secrets
    # are dummies; the file is the test's own).
    wiring_file = tmp_path / "wiring.json"
    recorder = {"ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "tests/aws/callback_plugins"),
                "ANSIBLE_CALLBACKS_ENABLED": "host_wiring", "MOODLE_PLATFORM_TEST_WIRING_FILE": str(wiring_file)}
    rc, out, changed, seconds = run_playbook(
        emulator, tmp_path, "site",
        site_vars(emulator, moodle_platform_target="aws"),
        inventories=[inventory], env=recorder)
    print(f"\nsecond run (moodle.platform.site, target aws, up to the hosts) against the moto AWS emulator: "
          f"{seconds:.0f} s, changed: {changed}")
    assert set(changed) == KNOWN_EMULATOR_CHANGES, (changed, out[-4000:])
    c = emulator["client"]
    instances = sorted(i["InstanceId"] for i in c("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{SITE}-docker-hosts"])["AutoScalingGroups"][0]["Instances"])
    # The run reached the hosts exactly at the first task that needs them - after the wiring.
    unreachable, task = {}, None
    for line in out.splitlines():
        match = re.match(r"TASK \[(.*)\] \*+", line)
        if match:
            task = match.group(1)
        match = re.match(r"fatal: \[(i-[0-9a-f]+)\]: UNREACHABLE!", line)
        if match:
            unreachable[match.group(1)] = task
    assert rc == 4, out[-4000:]
    assert unreachable == dict.fromkeys(
        instances, "moodle.platform.aws_docker_host : NFS client, stunnel (TLS) and what the mount helper's package build needs")
    assert "moodle.platform.docker_host :" not in out and "moodle.platform.compose_stack :" not in out
    wiring = json.loads(wiring_file.read_text())
    assert sorted(wiring) == instances
    (db,) = c("rds").describe_db_instances(DBInstanceIdentifier=f"{SITE}-db")["DBInstances"]
    (redis,) = c("elasticache").describe_replication_groups(ReplicationGroupId=f"{SITE}-redis")["ReplicationGroups"]
    primary = redis["NodeGroups"][0]["PrimaryEndpoint"]
    secrets = {key: c("secretsmanager").get_secret_value(SecretId=f"moodle-platform/{SITE}/{key}")["SecretString"]
               for key in ("db_master_password", "redis_auth_token", "moodle_admin_password")}
    expected = {
        "compose_stack_environment": "prod", "compose_stack_bind_address": "0.0.0.0",  # noqa: S104 - the hosts serve the load balancer
        "compose_stack_https_port": 443,
        # No compose_stack_wwwroot in the inventory: the load balancer's address.
        "compose_stack_wwwroot": "https://" + c("elbv2").describe_load_balancers(Names=[f"{SITE}-alb"])[
            "LoadBalancers"][0]["DNSName"],
        "compose_stack_moodle_admin_password": secrets["moodle_admin_password"],
        "compose_stack_db_external": True, "compose_stack_db_host": db["Endpoint"]["Address"],
        "compose_stack_db_port": db["Endpoint"]["Port"], "compose_stack_db_name": db["DBName"],
        "compose_stack_db_user": db["MasterUsername"], "compose_stack_db_password": secrets["db_master_password"],
        "compose_stack_db_tls": True, "compose_stack_db_tls_ca_file": "/etc/moodle-platform/rds-ca-bundle.pem",
        "compose_stack_redis_external": True, "compose_stack_redis_host": primary["Address"],
        "compose_stack_redis_port": primary["Port"], "compose_stack_redis_password": secrets["redis_auth_token"],
        "compose_stack_redis_tls": True, "compose_stack_moodledata_path": "/mnt/moodledata",
        "moodle_platform_backups": False, "upgrade_rollback": False,
        "aws_docker_host_efs_id": STATE["efs_id"], "aws_docker_host_efs_access_point_id": STATE["access_point_id"],
        "aws_docker_host_moodledata_path": "/mnt/moodledata",
        "aws_docker_host_rds_ca_file": "/etc/moodle-platform/rds-ca-bundle.pem",
    }
    for host, values in wiring.items():
        assert {key: values.get(key) for key in expected} == expected, host
    # Exactly one cron runner for the site: the first instance in sort order.
    assert [h for h, v in wiring.items() if v["compose_stack_cron_enabled"]] == instances[:1]
    assert not any(value in out for value in secrets.values())
    assert secrets["db_master_password"] == STATE["db_password"]


def _web_group(emulator):
    ec2 = emulator["client"]("ec2")
    return ec2, ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{SITE}-web"]}])[
        "SecurityGroups"][0]


def test_drift_is_reported_in_check_mode_and_repaired(emulator, tmp_path):
    assert STATE.get("provisioned"), "needs test_full_provision"
    ec2, group = _web_group(emulator)
    # Out of band, as a person in the console would: SSH open to the world.
    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws", site_vars(emulator), check=True)
    assert rc == 0, out[-4000:]
    assert "moodle.platform.aws_network : Web hosts security group (HTTPS from the load balancer only)" in changed
    # Check mode changed nothing.
    _, group = _web_group(emulator)
    assert any(p.get("FromPort") == 22 for p in group["IpPermissions"])
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws", site_vars(emulator))
    assert rc == 0, out[-4000:]
    assert "moodle.platform.aws_network : Web hosts security group (HTTPS from the load balancer only)" in changed
    _, group = _web_group(emulator)
    assert [p["FromPort"] for p in group["IpPermissions"]] == [443]


def _ec2_inventory(tmp_path, **compose):
    """The example inventory's amazon.aws.aws_ec2 source, pointed at the emulator's region and site."""
    config = yaml.safe_load((ROOT / "inventories/example-aws/aws_ec2.yml").read_text())
    config.update(regions=[REGION], filters={**config["filters"], "tag:moodle-platform-site": SITE})
    config["compose"] = {**config["compose"], **compose}
    inventory = tmp_path / "emulator.aws_ec2.yml"
    inventory.write_text(yaml.safe_dump(config))
    return inventory


def test_aws_ec2_inventory_puts_the_asg_hosts_into_docker_hosts(emulator, tmp_path):
    assert STATE.get("provisioned"), "needs test_full_provision"
    inventory = _ec2_inventory(tmp_path)
    out = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(inventory), "--list"], env=emulator["env"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    data = json.loads(out)
    asg = emulator["client"]("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[f"{SITE}-docker-hosts"])["AutoScalingGroups"][0]
    assert sorted(data["docker_hosts"]["hosts"]) == sorted(i["InstanceId"] for i in asg["Instances"])


def test_destroy_refuses_without_confirmation(emulator, tmp_path):
    assert STATE.get("provisioned"), "needs test_full_provision"
    before = inventory_of_resources(emulator)
    rc, out, changed, _ = run_playbook(emulator, tmp_path, "aws_destroy", site_vars(emulator))
    flat = " ".join(out.split())
    assert rc != 0
    assert f"Run it again with -e aws_destroy_confirm={SITE} to confirm" in flat, flat[-2000:]
    assert f"RDS {SITE}-db (final snapshot kept)" in flat and "backup bucket: kept" in flat
    assert changed == [] and inventory_of_resources(emulator) == before


def test_destroy_with_confirmation_keeps_snapshot_and_bucket(emulator, tmp_path):
    assert STATE.get("provisioned"), "needs test_full_provision"
    # moto keeps a deleted replication group in status 'deleting' for ever: do not wait for it to go.
    rc, out, _, seconds = run_playbook(emulator, tmp_path, "aws_destroy",
                                       site_vars(emulator, aws_destroy_confirm=SITE, aws_destroy_wait_for_redis=False))
    assert rc == 0, out[-4000:]
    print(f"\nteardown against the moto AWS emulator: {seconds:.0f} s")
    left = inventory_of_resources(emulator)
    assert left["vpcs"] == [] and left["db"] == [] and left["secrets"] == []
    assert f"{SITE}-docker-host" not in left["roles"]
    assert left["buckets"] == [f"{SITE}-backups"]
    redis = emulator["client"]("elasticache").describe_replication_groups()["ReplicationGroups"]
    assert [g["Status"] for g in redis] == ["deleting"]
    snapshots = emulator["client"]("rds").describe_db_snapshots()["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith(f"{SITE}-db-final-") for s in snapshots] == [True]
