"""`python -m infra.cli ...`: the same as `heraclius-ops ...`."""

from infra.cli import main

main()
