"""heraclius-ops: deploy, inspect and break Heraclius networks.

    infra.model      the one model of a deployment (directory, manifest, plan, keys, implementations,
                     verdicts), shared with the monitor; imports nothing else of infra
    infra.nodes      talking to nodes: SPEC 15 admin endpoints, SPEC 4.1 client commands, processes
    infra.providers  local / docker / aws behind one Provider interface (providers/base.py)
    infra.testbed    faults, region networks (netns, delayd), history and log checks
    infra.bench      the load sweep
    infra.ops, infra.status   deploy / destroy / inventory, status and verdicts of a live network
    infra.cli        thin click commands over those functions (and the monitor's composition root)

The library functions return data. infra never imports a node implementation: nodes are separate
processes (SPEC 4) reached over the spec's endpoints.
"""
