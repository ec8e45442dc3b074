"""impl_b: Heraclius node implementation B (OpenSSL via pyca/cryptography, own codec and Noise, LMDB, threads)."""
