"""Notebooks 04 (durability and memory) and 05 (security and scaling out): running it for real,
each experiment on a throwaway server it starts itself.

* ``persistence``: kill -9 under each persistence setting, acknowledged writes looked for; the
  RDB-to-AOF switch, replicas that are not backups, copy-on-write during a fork;
* ``blocking``: a script that blocks every client, BUSY, SCRIPT KILL, UNKILLABLE;
* ``memory``: bytes per member, encodings, eviction at maxmemory;
* ``security``: ACL users for each pattern and what they can still do, ACL LOG, script
  injection, CONFIG SET, an exposure report;
* ``cluster``: a throwaway local Redis Cluster (with a replica per primary if asked), where a
  key lives, a primary killed and replaced;
* ``failover``: the course's patterns under load while a primary dies, with and without WAIT.
"""
