"""``efs``: the model in a model store on an EFS file system mounted at ``/mnt/...``.

Read in place through the alias link (an atomic symlink switch moves it); checksums are not
verified by default, since hashing a large model on every cold start costs a full read of it
(``[model] verify_checksums = true`` asks for it). Needs a VPC on AWS and rules out SnapStart.
Locally the store is a directory under the service's ``.modelambda/`` mounted at the path.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelambda.spec import ServiceSpec
from modelambda.spectable import Problems, Table
from modelambda.strategies.base import LocalSetup
from modelambda.strategies.store import StoreStrategy, read_alias_and_refresh

if TYPE_CHECKING:
    from modelambda.deploy.resources import TemplateBuilder

# Lambda mounts EFS access points under /mnt (docs: configuration-filesystem).
MOUNT = re.compile(r"^/mnt/[A-Za-z0-9_.-]+$")
LOCAL_STORE = "efs"  # DIR/.modelambda/efs
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
# The access point: every client acts as this POSIX user on the file system, under this root.
POSIX_ID = "1000"
ACCESS_POINT_ROOT = "/modelambda"
NFS_PORT = 2049
# The VPC the stack creates when the spec names none: two private subnets in two AZs.
VPC_CIDR = "10.42.0.0/16"
SUBNET_CIDRS = ("10.42.0.0/20", "10.42.16.0/20")


class Efs(StoreStrategy):
    name = "efs"
    summary = "model on an EFS file system mounted at /mnt (needs a VPC)"
    runtime_source = "modelambda.runtime.sources.efs:EfsSource"
    deploy_keys = frozenset({"vpc_id", "subnet_ids"})

    def read(self, table: Table) -> dict[str, Any]:
        return {
            "mount_path": table.string("mount_path", "/mnt/models", pattern=MOUNT,
                                       allowed="a path like /mnt/NAME (Lambda mounts EFS "
                                               "under /mnt)"),
            **read_alias_and_refresh(table),
            # deploy: an existing VPC and its private subnets (one mount target each, so
            # one subnet per availability zone); by default the stack creates a VPC
            "vpc_id": table.string("vpc_id", None, pattern=VPC_ID,
                                   allowed="a VPC id, vpc-0123456789abcdef0"),
            "subnet_ids": _subnet_ids(table),
        }

    def check(self, spec: ServiceSpec, problems: Problems) -> None:
        if spec.service.snapstart:
            problems.add("service", "snapstart", True, "Lambda has no SnapStart with EFS")
        settings = spec.strategy.settings
        if bool(settings.get("vpc_id")) != bool(settings.get("subnet_ids")):
            key = "subnet_ids" if settings.get("vpc_id") else "vpc_id"
            problems.add("strategy", key, settings.get(key),
                         "vpc_id and subnet_ids go together (both name an existing VPC; "
                         "neither: the stack creates one)")

    def start_local(self, spec: ServiceSpec, services: Any) -> LocalSetup:
        store = self.store(spec)
        version = self.publish_local(spec, store)
        mount = str(spec.strategy.settings["mount_path"])
        services.log(f"model {spec.model.name} version {version} is "
                     f"{spec.strategy.settings['alias']!r} in {store.describe()} "
                     f"(mounted at {mount})")
        return LocalSetup(mounts={mount: local_store_dir(spec).resolve()})

    def store(self, spec: ServiceSpec, s3_client: Any = None) -> Any:
        from modelambda.modelstore import DirStore

        return DirStore(local_store_dir(spec))


    def deploy_resources(self, spec: ServiceSpec, template: TemplateBuilder) -> None:
        """The file system (kept when the stack is deleted: it holds the model versions),
        a mount target per subnet, an access point (uid/gid 1000 under /modelambda), and
        the function in the VPC with the access point mounted at ``mount_path``. Security
        groups: NFS into the mount targets only from the function's group; the function may
        reach NFS and HTTPS (S3 through the VPC's gateway endpoint: no NAT gateway)."""
        from modelambda.deploy.resources import arn, get_att, join, ref

        template.zip_function()
        settings = spec.strategy.settings
        if settings.get("vpc_id"):
            vpc: Any = settings["vpc_id"]
            subnets: list[Any] = list(settings["subnet_ids"])
        else:
            vpc, subnets = _network(template)
        template.add("FunctionSecurityGroup", "AWS::EC2::SecurityGroup", {
            "GroupDescription": f"modelambda {spec.service.name}: the function",
            "VpcId": vpc,
            "SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                     "CidrIp": "0.0.0.0/0",
                                     "Description": "HTTPS (S3 through the gateway endpoint)"}],
        })
        template.add("MountTargetSecurityGroup", "AWS::EC2::SecurityGroup", {
            "GroupDescription": f"modelambda {spec.service.name}: EFS mount targets",
            "VpcId": vpc,
            # no egress at all (the usual placeholder rule: no port matches it)
            "SecurityGroupEgress": [{"IpProtocol": "icmp", "FromPort": 252, "ToPort": 86,
                                     "CidrIp": "255.255.255.255/32",
                                     "Description": "no outbound traffic"}],
        })
        function_group = get_att("FunctionSecurityGroup", "GroupId")
        mount_group = get_att("MountTargetSecurityGroup", "GroupId")
        template.add("MountTargetNfsIngress", "AWS::EC2::SecurityGroupIngress", {
            "GroupId": mount_group, "IpProtocol": "tcp", "FromPort": NFS_PORT,
            "ToPort": NFS_PORT, "SourceSecurityGroupId": function_group,
            "Description": "NFS from the function only"})
        template.add("FunctionNfsEgress", "AWS::EC2::SecurityGroupEgress", {
            "GroupId": function_group, "IpProtocol": "tcp", "FromPort": NFS_PORT,
            "ToPort": NFS_PORT, "DestinationSecurityGroupId": mount_group,
            "Description": "NFS to the mount targets"})
        template.add("FileSystem", "AWS::EFS::FileSystem", {
            "Encrypted": True, "PerformanceMode": "generalPurpose",
            "ThroughputMode": "elastic",
        }, DeletionPolicy="Retain", UpdateReplacePolicy="Retain")
        mount_targets = [
            template.add(f"MountTarget{i}", "AWS::EFS::MountTarget", {
                "FileSystemId": ref("FileSystem"), "SubnetId": subnet,
                "SecurityGroups": [mount_group]})
            for i, subnet in enumerate(subnets, start=1)]
        template.add("AccessPoint", "AWS::EFS::AccessPoint", {
            "FileSystemId": ref("FileSystem"),
            "PosixUser": {"Uid": POSIX_ID, "Gid": POSIX_ID},
            "RootDirectory": {"Path": ACCESS_POINT_ROOT, "CreationInfo": {
                "OwnerUid": POSIX_ID, "OwnerGid": POSIX_ID, "Permissions": "755"}},
        })
        # ARNs built from Ref (the ids): GetAtt on an access point is not portable
        file_system_arn = arn("elasticfilesystem", join("file-system/", ref("FileSystem")))
        access_point_arn = arn("elasticfilesystem", join("access-point/", ref("AccessPoint")))
        template.vpc([function_group], subnets)
        template.set(FileSystemConfigs=[{"Arn": access_point_arn,
                                         "LocalMountPath": settings["mount_path"]}])
        template.depends_on.extend(mount_targets)  # Lambda mounts only available targets
        # the function reads the store; it never writes (no ClientWrite: a read-only mount)
        template.allow("MountModelStore", ["elasticfilesystem:ClientMount"], [file_system_arn],
                       {"StringEquals": {"elasticfilesystem:AccessPointArn": access_point_arn}})
        template.output("FileSystemId", ref("FileSystem"), "the EFS file system (kept when "
                        "the stack is deleted)")
        template.output("AccessPointId", ref("AccessPoint"),
                        f"the access point mounted at {settings['mount_path']}")


def _subnet_ids(table: Table) -> list[str]:
    value = table.data.get("subnet_ids", [])
    table.seen.add("subnet_ids")
    if not (isinstance(value, list) and all(isinstance(s, str) and SUBNET_ID.match(s)
                                            for s in value) and len(set(value)) == len(value)):
        table.problem("subnet_ids", value, "a list of distinct subnet ids, "
                                           "[\"subnet-0123456789abcdef0\", ...]")
        return []
    return list(value)


def _network(template: TemplateBuilder) -> tuple[Any, list[Any]]:
    """A VPC with two private subnets in two availability zones, their route table, and an
    S3 gateway endpoint on it (free, unlike a NAT gateway). Returns the VPC and subnets."""
    from modelambda.deploy.resources import join, ref

    template.add("Vpc", "AWS::EC2::VPC", {"CidrBlock": VPC_CIDR, "EnableDnsSupport": True,
                                          "EnableDnsHostnames": True})
    template.add("RouteTable", "AWS::EC2::RouteTable", {"VpcId": ref("Vpc")})
    subnets = []
    for index, cidr in enumerate(SUBNET_CIDRS):
        subnet = template.add(f"Subnet{index + 1}", "AWS::EC2::Subnet", {
            "VpcId": ref("Vpc"), "CidrBlock": cidr, "MapPublicIpOnLaunch": False,
            "AvailabilityZone": {"Fn::Select": [index, {"Fn::GetAZs": ""}]}})
        template.add(f"Subnet{index + 1}RouteTable", "AWS::EC2::SubnetRouteTableAssociation",
                     {"SubnetId": ref(subnet), "RouteTableId": ref("RouteTable")})
        subnets.append(ref(subnet))
    template.add("S3GatewayEndpoint", "AWS::EC2::VPCEndpoint", {
        "VpcId": ref("Vpc"), "VpcEndpointType": "Gateway",
        "ServiceName": join("com.amazonaws.", ref("AWS::Region"), ".s3"),
        "RouteTableIds": [ref("RouteTable")]})
    return ref("Vpc"), subnets


def local_store_dir(spec: ServiceSpec) -> Any:
    return spec.root / ".modelambda" / LOCAL_STORE
