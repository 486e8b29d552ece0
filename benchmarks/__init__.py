"""Benchmarks: vendorkit side by side with raw aiohttp, httpx and authlib (see README.md)."""
