"""Entry point: python -m wire_spec.vectors.generator [--out DIR]."""

from .generate import main

raise SystemExit(main())
