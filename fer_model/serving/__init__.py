"""Serving: the app's, the HTTP API's and MCP's shared corner.

    pool.py       a fixed pool of single-thread recognizers behind a bounded queue (`RecognizerPool`)
    http_api.py   `/v1`: plain HTTP routes for photos, on the pool
    mcp_tools.py  `/mcp`: the same analysis as MCP tools, on the pool
"""
from .pool import PoolFullError, RecognizerPool

__all__ = ["PoolFullError", "RecognizerPool"]
