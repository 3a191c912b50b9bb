#!/usr/bin/python
# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: elasticache_replication_group
short_description: ElastiCache (Redis OSS) replication group with an auth token and in-transit encryption
description:
  - Creates, updates or deletes an ElastiCache replication group (cluster mode disabled) for Moodle's
    sessions and application cache.
  - Exists because C(community.aws.elasticache) manages single cache clusters only, without
    C(AuthToken) or in-transit encryption; it is built on C(amazon.aws)'s module utilities.
  - Settings that AWS cannot change in place (encryption, subnet group, port, engine) are compared and
    refused with a message instead of being silently ignored.
version_added: 0.1.0
author: moodle.platform maintainers (@moodle-platform)
options:
  name:
    description: Replication group id (lower case, at most 40 characters).
    type: str
    required: true
  state:
    description: Whether the group should exist.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Description of the group.
    type: str
    default: moodle.platform Redis
  node_type:
    description: Cache node type.
    type: str
    default: cache.t4g.small
  engine_version:
    description: Redis OSS engine version.
    type: str
    default: "7.1"
  num_cache_clusters:
    description: Number of nodes (primary plus replicas); 2 or more enables automatic failover and Multi-AZ.
    type: int
    default: 2
  port:
    description: Port of the nodes.
    type: int
    default: 6379
  subnet_group:
    description: Cache subnet group name (required to create).
    type: str
  security_group_ids:
    description: VPC security groups of the nodes.
    type: list
    elements: str
    default: []
  auth_token:
    description:
      - Redis AUTH token (16-128 printable characters, no C(@), C(") or C(/)); required to create.
      - Not compared with the live group (AWS never returns it); set O(update_auth_token) to rotate it.
    type: str
  update_auth_token:
    description: Rotate the AUTH token of an existing group to O(auth_token).
    type: bool
    default: false
  snapshot_retention_limit:
    description: Days of automatic snapshots (0 turns them off).
    type: int
    default: 1
  final_snapshot_identifier:
    description: With O(state=absent), name of a final snapshot taken before deletion.
    type: str
  tags:
    description: Tags of the group (applied at creation).
    type: dict
    default: {}
  wait:
    description: Wait until the group is available (or deleted).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - moodle.platform.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - In-transit and at-rest encryption are always on.
"""

EXAMPLES = r"""
- name: Redis for Moodle sessions and cache
  moodle.platform.elasticache_replication_group:
    name: moodle-redis
    subnet_group: moodle-cache
    security_group_ids: [sg-0123456789abcdef0]
    auth_token: "{{ vault_redis_auth_token }}"
    num_cache_clusters: 2
  no_log: true
"""

RETURN = r"""
replication_group:
  description: The group as AWS describes it (snake_case keys); empty after deletion.
  returned: always
  type: dict
  sample: {"replication_group_id": "moodle-redis", "status": "available", "transit_encryption_enabled": true}
endpoint:
  description: Address and port of the primary endpoint.
  returned: when the group exists and is available
  type: dict
  sample: {"address": "moodle-redis.abc.ng.0001.euw1.cache.amazonaws.com", "port": 6379}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list


class ReplicationGroupManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = module.client("elasticache", retry_decorator=AWSRetry.jittered_backoff())
        self.changed = False
        self.diff = {"before": {}, "after": {}}

    def fail(self, msg, exc=None):
        if exc is None:
            self.module.fail_json(msg=msg)
        self.module.fail_json_aws(exc, msg=msg)

    def current(self):
        try:
            groups = self.client.describe_replication_groups(aws_retry=True, ReplicationGroupId=self.params["name"])
        except is_boto3_error_code("ReplicationGroupNotFoundFault"):
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:  # pylint: disable=duplicate-except
            self.fail(f"Failed to describe replication group {self.params['name']}", exc)
        return groups["ReplicationGroups"][0]

    def security_groups(self, group):
        """Security groups of the group's member clusters (describe_replication_groups does not return them)."""
        members = group.get("MemberClusters") or []
        if not members:
            return []
        try:
            cluster = self.client.describe_cache_clusters(aws_retry=True, CacheClusterId=members[0])["CacheClusters"][0]
        except is_boto3_error_code("CacheClusterNotFound"):
            # Seen with emulators that do not model member clusters: the security groups are unknown, not changed.
            self.module.warn(f"member cluster {members[0]} of {self.params['name']} not found: security groups not compared")
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:  # pylint: disable=duplicate-except
            self.fail(f"Failed to describe cache cluster {members[0]}", exc)
        return sorted(sg["SecurityGroupId"] for sg in cluster.get("SecurityGroups") or [])

    def state_of(self, group):
        if group is None:
            return {}
        return {
            "node_type": group.get("CacheNodeType"),
            "num_cache_clusters": len(group.get("MemberClusters") or []),
            "transit_encryption_enabled": bool(group.get("TransitEncryptionEnabled")),
            "at_rest_encryption_enabled": bool(group.get("AtRestEncryptionEnabled")),
            "auth_token_enabled": bool(group.get("AuthTokenEnabled")),
            "automatic_failover": group.get("AutomaticFailover") in ("enabled", "enabling"),
            "snapshot_retention_limit": group.get("SnapshotRetentionLimit", 0),
            "security_group_ids": self.security_groups(group),
        }

    def wanted(self):
        multi = self.params["num_cache_clusters"] >= 2
        return {
            "node_type": self.params["node_type"],
            "num_cache_clusters": self.params["num_cache_clusters"],
            "transit_encryption_enabled": True,
            "at_rest_encryption_enabled": True,
            "auth_token_enabled": True,
            "automatic_failover": multi,
            "snapshot_retention_limit": self.params["snapshot_retention_limit"],
            "security_group_ids": sorted(self.params["security_group_ids"]),
        }

    def wait_for(self, waiter_name):
        if not self.params["wait"] or self.module.check_mode:
            return
        delay = 15
        try:
            self.client.get_waiter(waiter_name).wait(
                ReplicationGroupId=self.params["name"],
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, self.params["wait_timeout"] // delay)})
        except botocore.exceptions.WaiterError as exc:
            self.fail(f"Timed out waiting for replication group {self.params['name']} ({waiter_name})", exc)

    def present(self, group):
        wanted = self.wanted()
        self.diff["after"] = wanted
        if group is None:
            for option in ("subnet_group", "auth_token"):
                if not self.params[option]:
                    self.fail(f"{option} is required to create replication group {self.params['name']}")
            self.changed = True
            if self.module.check_mode:
                return None
            multi = self.params["num_cache_clusters"] >= 2
            try:
                self.client.create_replication_group(
                    aws_retry=True, ReplicationGroupId=self.params["name"],
                    ReplicationGroupDescription=self.params["description"], Engine="redis",
                    EngineVersion=self.params["engine_version"], CacheNodeType=self.params["node_type"],
                    NumCacheClusters=self.params["num_cache_clusters"], AutomaticFailoverEnabled=multi,
                    MultiAZEnabled=multi, CacheSubnetGroupName=self.params["subnet_group"],
                    SecurityGroupIds=self.params["security_group_ids"], Port=self.params["port"],
                    AuthToken=self.params["auth_token"], TransitEncryptionEnabled=True, AtRestEncryptionEnabled=True,
                    SnapshotRetentionLimit=self.params["snapshot_retention_limit"],
                    Tags=ansible_dict_to_boto3_tag_list(self.params["tags"]))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                self.fail(f"Failed to create replication group {self.params['name']}", exc)
            self.wait_for("replication_group_available")
            return self.current()

        live = self.diff["before"]
        immutable = {k: (live[k], wanted[k]) for k in ("transit_encryption_enabled", "at_rest_encryption_enabled")
                     if live[k] != wanted[k]}
        if group.get("CacheNodeType") and immutable:
            self.fail(f"replication group {self.params['name']} cannot be changed in place: "
                      + ", ".join(f"{k} is {a}, wanted {b}" for k, (a, b) in immutable.items())
                      + "; create a new group and move the site to it")
        if live["num_cache_clusters"] != wanted["num_cache_clusters"]:
            self.module.warn(f"replication group {self.params['name']} has {live['num_cache_clusters']} nodes, wanted "
                             f"{wanted['num_cache_clusters']}: change the replica count with the AWS console or CLI "
                             "(IncreaseReplicaCount/DecreaseReplicaCount are not automated here)")
        changes = {}
        if live["node_type"] != wanted["node_type"]:
            changes["CacheNodeType"] = wanted["node_type"]
        if live["security_group_ids"] is not None and live["security_group_ids"] != wanted["security_group_ids"]:
            changes["SecurityGroupIds"] = self.params["security_group_ids"]
        if live["snapshot_retention_limit"] != wanted["snapshot_retention_limit"]:
            changes["SnapshotRetentionLimit"] = wanted["snapshot_retention_limit"]
        if live["automatic_failover"] != wanted["automatic_failover"]:
            changes["AutomaticFailoverEnabled"] = wanted["automatic_failover"]
            changes["MultiAZEnabled"] = wanted["automatic_failover"]
        if self.params["update_auth_token"]:
            changes["AuthToken"] = self.params["auth_token"]
            changes["AuthTokenUpdateStrategy"] = "ROTATE"
        if not changes:
            return group
        self.changed = True
        if self.module.check_mode:
            return group
        try:
            self.client.modify_replication_group(aws_retry=True, ReplicationGroupId=self.params["name"],
                                                 ApplyImmediately=True, **changes)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.fail(f"Failed to modify replication group {self.params['name']}", exc)
        self.wait_for("replication_group_available")
        return self.current()

    def absent(self, group):
        if group is None or group.get("Status") == "deleting":
            return None
        self.changed = True
        if self.module.check_mode:
            return None
        extra = {}
        if self.params["final_snapshot_identifier"]:
            extra["FinalSnapshotIdentifier"] = self.params["final_snapshot_identifier"]
        try:
            self.client.delete_replication_group(aws_retry=True, ReplicationGroupId=self.params["name"],
                                                 RetainPrimaryCluster=False, **extra)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.fail(f"Failed to delete replication group {self.params['name']}", exc)
        self.wait_for("replication_group_deleted")
        return None

    def run(self):
        group = self.current()
        self.diff["before"] = self.state_of(group)
        if self.params["state"] == "present":
            group = self.present(group)
        else:
            group = self.absent(group)
        result = {"changed": self.changed, "replication_group": camel_dict_to_snake_dict(group or {})}
        if self.module._diff:
            result["diff"] = self.diff
        primary = ((group or {}).get("NodeGroups") or [{}])[0].get("PrimaryEndpoint")
        if primary:
            result["endpoint"] = {"address": primary.get("Address"), "port": primary.get("Port")}
        self.module.exit_json(**result)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        description=dict(type="str", default="moodle.platform Redis"),
        node_type=dict(type="str", default="cache.t4g.small"),
        engine_version=dict(type="str", default="7.1"),
        num_cache_clusters=dict(type="int", default=2),
        port=dict(type="int", default=6379),
        subnet_group=dict(type="str"),
        security_group_ids=dict(type="list", elements="str", default=[]),
        auth_token=dict(type="str", no_log=True),
        update_auth_token=dict(type="bool", default=False),
        snapshot_retention_limit=dict(type="int", default=1),
        final_snapshot_identifier=dict(type="str"),
        tags=dict(type="dict", default={}),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1800),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    token = module.params["auth_token"]
    if token is not None and (not 16 <= len(token) <= 128 or any(c in token for c in '@"/ ')):
        module.fail_json(msg="auth_token must be 16-128 printable characters without '@', '\"', '/' or spaces")
    ReplicationGroupManager(module).run()


if __name__ == "__main__":
    main()
