"""Start the moto AWS emulator (moto server, an emulator - never AWS) with four extensions, each filling a gap
between moto 5.2.5 and the AWS API that the roles' modules call (docs/aws.md "What was only tested against the
emulator"):

1. EFS DescribeTags / CreateTags / DeleteTags (the file-system tag API that community.aws.efs calls; AWS still
   serves it, moto has only the newer ListTagsForResource / TagResource / UntagResource). The extension answers
   them from moto's own EFS tag store, so tags written one way are read the other way.
2. RDS DescribeDBParameterGroups with the name of a group that does not exist: AWS answers
   DBParameterGroupNotFound, moto an empty list (amazon.aws.rds_instance_param_group then fails with IndexError).
3. RDS parameter catalogue: AWS fills a new DB parameter group with every parameter of its family (name, data
   type, allowed values, modifiable), which DescribeDBParameters returns; moto starts it empty, so the module
   finds no parameter to set. The extension seeds a new group of a family listed in rds_parameter_catalogue.json
   (a STAND-IN: an excerpt of AWS's catalogue written from the RDS documentation, see that file) with those
   entries; groups of other families stay empty, as in plain moto.
4. CloudFormation `Ref` of an AWS::EFS::AccessPoint: AWS returns the access point id; moto has no physical id for
   it and returns the Python object's repr (the role's stack output AccessPointId).

Run as a program: python emulator.py <port>; it serves on 127.0.0.1:<port> until terminated.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

CATALOGUE = json.loads((Path(__file__).with_name("rds_parameter_catalogue.json")).read_text())


def _extend_efs() -> None:
    from moto.efs import responses, urls

    def describe_tags(self):
        file_system_id = self.path.rstrip("/").split("/")[-1]
        self.efs_backend.describe_file_systems(file_system_id=file_system_id)  # FileSystemNotFound as in AWS
        tags = self.efs_backend.list_tags_for_resource(file_system_id)
        return json.dumps({"Tags": tags}), {"Content-Type": "application/json"}

    def create_tags(self):
        file_system_id = self.path.rstrip("/").split("/")[-1]
        tags = {tag["Key"]: tag.get("Value") for tag in self._get_param("Tags") or []}
        self.efs_backend.tag_resource(file_system_id, tags)
        return "", {"Content-Type": "application/json", "status": 204}

    def delete_tags(self):
        file_system_id = self.path.rstrip("/").split("/")[-1]
        self.efs_backend.untag_resource(file_system_id, self._get_param("TagKeys") or [])
        return "", {"Content-Type": "application/json", "status": 204}

    from moto.efs import models

    models.AccessPoint.physical_resource_id = property(lambda self: self.access_point_id)
    responses.EFSResponse.describe_tags = describe_tags
    responses.EFSResponse.create_tags = create_tags
    responses.EFSResponse.delete_tags = delete_tags
    for path in ("/2015-02-01/tags/<file_system_id>/", "/2015-02-01/create-tags/<file_system_id>",
                 "/2015-02-01/delete-tags/<file_system_id>"):
        urls.url_paths[path] = urls.response.dispatch


def _extend_rds() -> None:
    from moto.rds import models
    from moto.rds.exceptions import DBParameterGroupNotFoundError

    describe = models.RDSBackend.describe_db_parameter_groups
    create = models.RDSBackend.create_db_parameter_group

    def describe_db_parameter_groups(self, db_parameter_group_kwargs):
        groups = describe(self, db_parameter_group_kwargs)
        name = db_parameter_group_kwargs.get("db_parameter_group_name")
        if name and not groups:
            raise DBParameterGroupNotFoundError(name)
        return groups

    def create_db_parameter_group(self, db_parameter_group_kwargs):
        group = create(self, db_parameter_group_kwargs)
        for entry in CATALOGUE["families"].get(group.family, []):
            group.parameters[entry["ParameterName"]] = {**copy.deepcopy(entry), "Source": "engine-default"}
        return group

    models.RDSBackend.describe_db_parameter_groups = describe_db_parameter_groups
    models.RDSBackend.create_db_parameter_group = create_db_parameter_group


def main(port: int) -> None:
    from moto import server

    _extend_efs()
    _extend_rds()
    server.main(["-H", "127.0.0.1", "-p", str(port)])


if __name__ == "__main__":
    main(int(sys.argv[1]))
