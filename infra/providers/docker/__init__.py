"""Docker provider pieces: the engine connection (engine.py) and node images (images.py, Dockerfile.*)."""
