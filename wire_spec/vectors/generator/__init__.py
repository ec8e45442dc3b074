"""Generator of the Heraclius conformance vectors (SPEC 17), independent of both implementations."""
