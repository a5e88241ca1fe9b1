"""Notebooks 04 (durability and memory) and 05 (security and scaling out): running it for real,
each experiment on a throwaway server it starts itself.

* ``persistence``: kill -9 under each persistence setting, acknowledged writes looked for;
* ``blocking``: a script that blocks every client, BUSY, SCRIPT KILL;
* ``memory``: bytes per member and per entry, encodings, eviction at maxmemory;
* ``security``: ACL users for each pattern, script injection, an exposure report;
* ``cluster``: a throwaway local Redis Cluster, and where a key lives.
"""
