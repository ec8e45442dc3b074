"""Tests of impl_b: unit, simulation, fuzz, conformance and real-process network tests."""
