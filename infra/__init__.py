"""heraclius-ops: planning, keys, manifests, the local provider, faults and history checks.

The library functions return data; `infra.cli` is a thin click wrapper around them.
infra never imports a node implementation: nodes are separate processes (SPEC 4).
"""
