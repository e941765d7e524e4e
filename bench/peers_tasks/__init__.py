"""Task modules for bench/peers.py: the same no-op job for each library's worker."""
