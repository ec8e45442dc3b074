"""AWS provisioning against moto's EC2 server: what provision makes, what destroy removes."""

from __future__ import annotations

import boto3
import pytest

from infra import ops
from infra.errors import RemoteError, UsageError
from infra.model.planner import make_plan
from infra.providers.aws import provider as aws_provider
from infra.providers.aws import provision as pv
from infra.providers.aws.provider import write_deployment
from infra.providers.aws.sshkey import generate_ssh_key

PORTS = [7000, 7001, 7002]
NODES = [pv.NodeRequest("c0-n0", "us-east"), pv.NodeRequest("c0-n1", "eu-west"),
         pv.NodeRequest("c0-n2", "us-east")]


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    return generate_ssh_key(tmp_path_factory.mktemp("ssh") / "id_ed25519")


def ec2(endpoint, region):
    return boto3.client("ec2", region_name=pv.AWS_REGIONS[region], endpoint_url=endpoint)


@pytest.fixture(scope="module")
def amis(moto_endpoint):
    """One image id per region (moto's describe_images is slow: ask once)."""
    out = {}
    for r in ("us-east", "eu-west"):
        c = boto3.client("ec2", region_name=pv.AWS_REGIONS[r], endpoint_url=moto_endpoint,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
        out[r] = c.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return out


def tagged(client, name, what):
    f = [{"Name": f"tag:{pv.TAG}", "Values": [name]}]
    if what == "instances":
        return [i for r in client.describe_instances(Filters=f)["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"]
    call, key = {"vpcs": ("describe_vpcs", "Vpcs"), "subnets": ("describe_subnets", "Subnets"),
                 "sgs": ("describe_security_groups", "SecurityGroups"),
                 "keys": ("describe_key_pairs", "KeyPairs"),
                 "igws": ("describe_internet_gateways", "InternetGateways"),
                 "rts": ("describe_route_tables", "RouteTables")}[what]
    return getattr(client, call)(Filters=f)[key]


def make(endpoint, name, ssh_key, amis):
    return pv.provision(name, NODES, PORTS, ssh_key, "203.0.113.7/32", ami=amis, endpoint_url=endpoint)


def test_provision_and_destroy(moto_endpoint, aws_env, ssh_key, amis, request):
    request.addfinalizer(lambda: pv.destroy("dep1", ["us-east", "eu-west"], moto_endpoint))
    res = make(moto_endpoint, "dep1", ssh_key, amis)
    assert set(res["regions"]) == {"us-east", "eu-west"}
    publics = {a["public"] for r in res["regions"].values() for a in r["addresses"].values()}
    assert len(publics) == 3
    for region, expect_nodes in (("us-east", {"c0-n0", "c0-n2"}), ("eu-west", {"c0-n1"})):
        c = ec2(moto_endpoint, region)
        r = res["regions"][region]
        assert [v["VpcId"] for v in tagged(c, "dep1", "vpcs")] == [r["vpc"]]
        assert [s["SubnetId"] for s in tagged(c, "dep1", "subnets")] == [r["subnet"]]
        assert len(tagged(c, "dep1", "igws")) == 1 and len(tagged(c, "dep1", "rts")) == 1
        assert [k["KeyName"] for k in tagged(c, "dep1", "keys")] == ["heraclius-dep1"]
        insts = tagged(c, "dep1", "instances")
        nodes = {t["Value"] for i in insts for t in i["Tags"] if t["Key"] == "heraclius:node"}
        assert nodes == expect_nodes
        assert all(i["KeyName"] == "heraclius-dep1" and i["SubnetId"] == r["subnet"] for i in insts)
        (sg,) = tagged(c, "dep1", "sgs")
        rules = {p["FromPort"]: {x["CidrIp"] for x in p["IpRanges"]} for p in sg["IpPermissions"]}
        assert rules[22] == {"203.0.113.7/32"}
        for port in PORTS:
            # only the deployment's own addresses: its VPC and every instance's public /32
            assert rules[port] == {r["cidr"]} | {f"{ip}/32" for ip in publics}
        assert all("0.0.0.0/0" not in cidrs for cidrs in rules.values())
    gone = pv.destroy("dep1", ["us-east", "eu-west"], moto_endpoint)
    assert gone["us-east"]["instances"] == 2 and gone["eu-west"]["instances"] == 1
    assert gone["us-east"]["vpcs"] == 1 and gone["us-east"]["security_groups"] == 1
    for region in ("us-east", "eu-west"):
        c = ec2(moto_endpoint, region)
        for what in ("instances", "vpcs", "subnets", "sgs", "keys", "igws", "rts"):
            assert tagged(c, "dep1", what) == [], (region, what)


def test_destroy_leaves_other_deployments(moto_endpoint, aws_env, ssh_key, amis, request):
    request.addfinalizer(lambda: pv.destroy("keep", ["us-east", "eu-west"], moto_endpoint))
    request.addfinalizer(lambda: pv.destroy("drop", ["us-east", "eu-west"], moto_endpoint))
    make(moto_endpoint, "keep", ssh_key, amis)
    make(moto_endpoint, "drop", ssh_key, amis)
    pv.destroy("drop", ["us-east", "eu-west"], moto_endpoint)
    c = ec2(moto_endpoint, "us-east")
    assert len(tagged(c, "keep", "instances")) == 2 and len(tagged(c, "keep", "vpcs")) == 1
    assert tagged(c, "drop", "instances") == []
    assert pv.destroy("drop", ["us-east", "eu-west"], moto_endpoint)["us-east"]["vpcs"] == 0


def test_ssh_open_to_world_is_refused(moto_endpoint, aws_env, ssh_key):
    with pytest.raises(UsageError, match="whole internet"):
        pv.provision("dep2", NODES, PORTS, ssh_key, "0.0.0.0/0", endpoint_url=moto_endpoint)


def test_missing_credentials_says_how_to_fix(monkeypatch, tmp_path, ssh_key):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UsageError) as e:
        pv.provision("dep3", NODES, PORTS, ssh_key, "203.0.113.7/32", endpoint_url="http://127.0.0.1:9")
    assert "no AWS credentials" in e.value.message and "AWS_ACCESS_KEY_ID" in e.value.fix


def _all_tagged(endpoint, name):
    out = {}
    for region in ("us-east", "eu-west", "ap-south"):
        c = ec2(endpoint, region)
        for what in ("instances", "vpcs", "subnets", "sgs", "keys", "igws", "rts"):
            out[(region, what)] = len(tagged(c, name, what))
    return out


def test_ops_deploy_aws_needs_ssh_cidr_and_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("HERACLIUS_AWS_SSH_CIDR", raising=False)
    with pytest.raises(UsageError, match="HERACLIUS_AWS_SSH_CIDR"):
        ops.deploy("aws1", tmp_path, provider="aws")
    monkeypatch.setenv("HERACLIUS_AWS_SSH_CIDR", "203.0.113.7/32")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(UsageError, match="no AWS credentials"):
        ops.deploy("aws1", tmp_path, provider="aws")
    assert not any(tmp_path.glob("aws1*"))


def test_ops_deploy_aws_rolls_back_when_hosts_unreachable(moto_endpoint, aws_env, amis, monkeypatch, tmp_path):
    """When the instances never accept SSH, deploy fails and removes every resource it made and
    its directory. (moto's addresses are fake: whether a connection to one gets an answer depends
    on the network here, so the wait itself is replaced by the outcome we test.)"""
    monkeypatch.setenv("HERACLIUS_AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("HERACLIUS_AWS_SSH_CIDR", "203.0.113.7/32")
    monkeypatch.setenv("HERACLIUS_AWS_AMI", amis["us-east"])
    monkeypatch.setenv("HERACLIUS_AWS_SSH_TIMEOUT", "1")
    seen = []

    def unreachable(addresses, timeout):
        seen.extend(addresses)
        assert _all_tagged(moto_endpoint, "aws2")[("us-east", "instances")] == 8
        raise RemoteError(f"SSH not reachable on {', '.join(addresses)} after {timeout:.0f} s")

    monkeypatch.setattr(aws_provider, "wait_ssh", unreachable)
    with pytest.raises(RemoteError, match="SSH not reachable"):
        ops.deploy("aws2", tmp_path, provider="aws", regions=1)
    assert len(seen) == 8
    assert set(_all_tagged(moto_endpoint, "aws2").values()) == {0}
    assert not any(tmp_path.glob("aws2*"))


def test_ops_destroy_routes_to_aws(moto_endpoint, aws_env, amis, ssh_key, monkeypatch, tmp_path):
    monkeypatch.setenv("HERACLIUS_AWS_ENDPOINT_URL", moto_endpoint)
    plan = make_plan(2, 1, 1, 4, "alternate")
    res = pv.provision("aws3", [pv.NodeRequest(n.id, n.region) for n in plan.nodes], PORTS, ssh_key,
                       "203.0.113.7/32", ami=amis, endpoint_url=moto_endpoint)
    addrs = {node: {"host": a["public"], "bind": a["private"]}
             for r in res["regions"].values() for node, a in r["addresses"].items()}
    dep = write_deployment(plan, "aws3", tmp_path, addrs)
    node = dep.manifest["clusters"][0]["nodes"][0]
    assert node["host"] != node["bind"] and node["ports"] == {"peer": 7000, "client": 7001, "admin": 7002}
    assert _all_tagged(moto_endpoint, "aws3")[("us-east", "instances")] == 4
    assert ops.destroy("aws3", tmp_path)
    assert set(_all_tagged(moto_endpoint, "aws3").values()) == {0}
    assert not dep.root.exists()
