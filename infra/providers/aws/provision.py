"""EC2 resources of one deployment, per region: VPC, internet gateway, route table, subnet, security
group, key pair and one instance per node, every one tagged `heraclius:deployment=<name>`.

Security group: SSH only from the operator's CIDR; the peer, client and admin ports only from the
deployment's own addresses (every instance's public /32 and the VPC's CIDR), never from 0.0.0.0/0.
Public addresses are known only once the instances run, so those rules are added after launch.
`destroy` finds everything by the tag, so it also cleans up after a half-finished `provision`."""

from __future__ import annotations

import time
from dataclasses import dataclass

import boto3
import botocore.exceptions

from infra.errors import RemoteError, UsageError

TAG = "heraclius:deployment"
# plan region name -> AWS region
AWS_REGIONS = {"us-east": "us-east-1", "eu-west": "eu-west-1", "ap-south": "ap-south-1", "sa-east": "sa-east-1",
               "us-west": "us-west-2", "eu-central": "eu-central-1", "ap-east": "ap-southeast-1",
               "af-south": "af-south-1"}
DEBIAN_OWNER = "136693071363"  # Debian's official AMI account
CREDENTIALS_FIX = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with a profile from "
                   "`aws configure`), then run the command again")


@dataclass(frozen=True)
class NodeRequest:
    """One instance to launch: which node it carries and in which plan region."""

    node_id: str
    region: str


def session(endpoint_url: str | None = None) -> boto3.Session:
    """A boto3 session with credentials, or UsageError saying how to provide them."""
    s = boto3.Session()
    if s.get_credentials() is None:
        raise UsageError("no AWS credentials found", fix=CREDENTIALS_FIX)
    return s


def _client(s: boto3.Session, region: str, endpoint_url: str | None):
    return s.client("ec2", region_name=region, endpoint_url=endpoint_url)


def _tags(name: str, what: str) -> list[dict]:
    return [{"Key": TAG, "Value": name}, {"Key": "Name", "Value": f"heraclius-{name}-{what}"}]


def _spec(kind: str, name: str, what: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": _tags(name, what)}]


def _call(fn, **kw):
    """Run one EC2 call; turn credential and API failures into errors with a fix."""
    try:
        return fn(**kw)
    except botocore.exceptions.NoCredentialsError:
        raise UsageError("no AWS credentials found", fix=CREDENTIALS_FIX) from None
    except botocore.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("AuthFailure", "UnrecognizedClientException", "InvalidClientTokenId"):
            raise UsageError(f"AWS rejected the credentials ({code})", fix=CREDENTIALS_FIX) from None
        raise RemoteError(f"EC2 {fn.__name__} failed: {e}") from None
    except botocore.exceptions.EndpointConnectionError as e:
        raise UsageError(f"cannot reach EC2: {e}", fix="check the network and the region name") from None


def find_ami(ec2) -> str:
    images = _call(ec2.describe_images, Owners=[DEBIAN_OWNER],
                   Filters=[{"Name": "name", "Values": ["debian-12-amd64-*"]},
                            {"Name": "state", "Values": ["available"]}])["Images"]
    if not images:
        raise UsageError("no Debian 12 AMI found in this region", fix="pass an AMI id with --ami")
    return max(images, key=lambda i: i.get("CreationDate", ""))["ImageId"]


def provision_region(s: boto3.Session, name: str, region: str, index: int, nodes: list[str],
                     ssh_public_key: str, ssh_cidr: str, instance_type: str, ami: str | None,
                     endpoint_url: str | None = None) -> dict:
    """Create one region's network and instances. Returns what was made (ids and addresses)."""
    aws_region = AWS_REGIONS[region]
    ec2 = _client(s, aws_region, endpoint_url)
    cidr = f"10.{index}.0.0/16"
    vpc = _call(ec2.create_vpc, CidrBlock=cidr, TagSpecifications=_spec("vpc", name, region))["Vpc"]["VpcId"]
    _call(ec2.modify_vpc_attribute, VpcId=vpc, EnableDnsHostnames={"Value": True})
    igw = _call(ec2.create_internet_gateway,
                TagSpecifications=_spec("internet-gateway", name, region))["InternetGateway"]["InternetGatewayId"]
    _call(ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)
    subnet = _call(ec2.create_subnet, VpcId=vpc, CidrBlock=f"10.{index}.1.0/24",
                   TagSpecifications=_spec("subnet", name, region))["Subnet"]["SubnetId"]
    _call(ec2.modify_subnet_attribute, SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    rt = _call(ec2.create_route_table, VpcId=vpc,
               TagSpecifications=_spec("route-table", name, region))["RouteTable"]["RouteTableId"]
    _call(ec2.create_route, RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    _call(ec2.associate_route_table, RouteTableId=rt, SubnetId=subnet)
    sg = _call(ec2.create_security_group, GroupName=f"heraclius-{name}", VpcId=vpc,
               Description=f"heraclius deployment {name}: node ports for its own addresses only",
               TagSpecifications=_spec("security-group", name, region))["GroupId"]
    # the default egress rule (all out) stays; ingress starts with SSH from the operator only
    _call(ec2.authorize_security_group_ingress, GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": ssh_cidr, "Description": "operator SSH"}]}])
    key_name = f"heraclius-{name}"
    _call(ec2.import_key_pair, KeyName=key_name, PublicKeyMaterial=ssh_public_key.encode(),
          TagSpecifications=_spec("key-pair", name, region))
    image = ami or find_ami(ec2)
    instances = {}
    for node_id in nodes:
        inst = _call(ec2.run_instances, ImageId=image, InstanceType=instance_type, MinCount=1, MaxCount=1,
                     KeyName=key_name, SubnetId=subnet, SecurityGroupIds=[sg],
                     TagSpecifications=[{"ResourceType": "instance",
                                         "Tags": _tags(name, node_id) + [{"Key": "heraclius:node", "Value": node_id}]},
                                        {"ResourceType": "volume", "Tags": _tags(name, node_id)}])["Instances"][0]
        instances[node_id] = inst["InstanceId"]
    return {"region": region, "aws_region": aws_region, "vpc": vpc, "cidr": cidr, "igw": igw, "subnet": subnet,
            "route_table": rt, "security_group": sg, "key_pair": key_name, "ami": image, "instances": instances}


def wait_addresses(s: boto3.Session, res: dict, endpoint_url: str | None = None, timeout: float = 300.0) -> dict:
    """Wait until the region's instances run; return node id -> {public, private} addresses."""
    ec2 = _client(s, res["aws_region"], endpoint_url)
    ids = list(res["instances"].values())
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for r in _call(ec2.describe_instances, InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] == "running" and i.get("PublicIpAddress"):
                    found[i["InstanceId"]] = {"public": i["PublicIpAddress"], "private": i["PrivateIpAddress"]}
        if len(found) == len(ids):
            return {node: found[iid] for node, iid in res["instances"].items()}
        if time.monotonic() > deadline:
            raise RemoteError(f"instances in {res['aws_region']} not running with a public address after {timeout:.0f} s",
                              fix="look at them in the EC2 console; `heraclius-ops destroy` removes them")
        time.sleep(2.0)


def open_node_ports(s: boto3.Session, res: dict, ports: list[int], peer_cidrs: list[str],
                    endpoint_url: str | None = None) -> None:
    """Allow the node ports (peer, client, admin) from the deployment's own addresses only."""
    ec2 = _client(s, res["aws_region"], endpoint_url)
    ranges = [{"CidrIp": c, "Description": "heraclius deployment address"} for c in [res["cidr"], *peer_cidrs]]
    _call(ec2.authorize_security_group_ingress, GroupId=res["security_group"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": ranges} for p in ports])


def provision(name: str, nodes: list[NodeRequest], ports: list[int], ssh_public_key: str, ssh_cidr: str,
              instance_type: str = "t3.small", ami: dict[str, str] | None = None,
              endpoint_url: str | None = None, progress=lambda _m: None) -> dict:
    """Provision every region of `nodes`; returns {"regions": {region: resources+addresses}}.
    On failure everything tagged with `name` is destroyed before the error propagates."""
    if ssh_cidr in ("0.0.0.0/0", "::/0"):
        raise UsageError("refusing to open SSH to the whole internet", fix="pass --ssh-cidr YOUR.IP.ADDR/32")
    unknown = sorted({n.region for n in nodes} - set(AWS_REGIONS))
    if unknown:
        raise UsageError(f"no AWS region for plan region(s) {', '.join(unknown)}",
                         fix=f"use regions from: {', '.join(AWS_REGIONS)}")
    s = session(endpoint_url)
    regions = list(dict.fromkeys(n.region for n in nodes))
    out: dict = {"regions": {}}
    try:
        for i, region in enumerate(regions, 1):
            ids = [n.node_id for n in nodes if n.region == region]
            out["regions"][region] = provision_region(s, name, region, i, ids, ssh_public_key, ssh_cidr,
                                                      instance_type, (ami or {}).get(region), endpoint_url)
            progress(f"{region}: VPC, subnet, security group, key pair and {len(ids)} instance(s) created")
        for res in out["regions"].values():
            res["addresses"] = wait_addresses(s, res, endpoint_url)
        publics = [f"{a['public']}/32" for res in out["regions"].values() for a in res["addresses"].values()]
        for res in out["regions"].values():
            open_node_ports(s, res, ports, publics, endpoint_url)
        progress("node ports opened to the deployment's own addresses")
    except BaseException:
        destroy(name, regions, endpoint_url)
        raise
    return out


def _tag_filter(name: str) -> list[dict]:
    return [{"Name": f"tag:{TAG}", "Values": [name]}]


def _wait_terminated(ec2, ids: list[str], timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [i["State"]["Name"] for r in _call(ec2.describe_instances, InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]]
        if all(st == "terminated" for st in states):
            return
        if time.monotonic() > deadline:
            raise RemoteError(f"instances {', '.join(ids)} not terminated after {timeout:.0f} s",
                              fix="run destroy again; the rest is removed once they are gone")
        time.sleep(1.0)


def destroy_region(s: boto3.Session, name: str, aws_region: str, endpoint_url: str | None = None) -> dict:
    """Remove everything tagged with `name` in one AWS region, in dependency order. Returns counts."""
    ec2 = _client(s, aws_region, endpoint_url)
    f = _tag_filter(name)
    gone = {"instances": 0, "key_pairs": 0, "security_groups": 0, "subnets": 0, "route_tables": 0,
            "internet_gateways": 0, "vpcs": 0}
    ids = [i["InstanceId"] for r in _call(ec2.describe_instances, Filters=f)["Reservations"]
           for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    if ids:
        _call(ec2.terminate_instances, InstanceIds=ids)
        _wait_terminated(ec2, ids)
        gone["instances"] = len(ids)
    for kp in _call(ec2.describe_key_pairs, Filters=f)["KeyPairs"]:
        _call(ec2.delete_key_pair, KeyName=kp["KeyName"])
        gone["key_pairs"] += 1
    for sg in _call(ec2.describe_security_groups, Filters=f)["SecurityGroups"]:
        _call(ec2.delete_security_group, GroupId=sg["GroupId"])
        gone["security_groups"] += 1
    for sn in _call(ec2.describe_subnets, Filters=f)["Subnets"]:
        _call(ec2.delete_subnet, SubnetId=sn["SubnetId"])
        gone["subnets"] += 1
    for rt in _call(ec2.describe_route_tables, Filters=f)["RouteTables"]:
        for assoc in rt.get("Associations", []):
            if not assoc.get("Main"):
                _call(ec2.disassociate_route_table, AssociationId=assoc["RouteTableAssociationId"])
        _call(ec2.delete_route_table, RouteTableId=rt["RouteTableId"])
        gone["route_tables"] += 1
    for igw in _call(ec2.describe_internet_gateways, Filters=f)["InternetGateways"]:
        for att in igw.get("Attachments", []):
            _call(ec2.detach_internet_gateway, InternetGatewayId=igw["InternetGatewayId"], VpcId=att["VpcId"])
        _call(ec2.delete_internet_gateway, InternetGatewayId=igw["InternetGatewayId"])
        gone["internet_gateways"] += 1
    for vpc in _call(ec2.describe_vpcs, Filters=f)["Vpcs"]:
        _call(ec2.delete_vpc, VpcId=vpc["VpcId"])
        gone["vpcs"] += 1
    return gone


def destroy(name: str, regions: list[str], endpoint_url: str | None = None) -> dict[str, dict]:
    """Remove every resource tagged with `name` in the given plan regions (idempotent)."""
    s = session(endpoint_url)
    return {r: destroy_region(s, name, AWS_REGIONS[r], endpoint_url) for r in regions if r in AWS_REGIONS}
