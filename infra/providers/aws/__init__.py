"""AWS provider: boto3 provisioning (provision.py) and deployment through Ansible (provider.py)."""
