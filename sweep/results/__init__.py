"""A sweep's results on disk.

- `layout.py`: where everything of a sweep lives, atomic writes;
- `runs_table.py`: the runs table's schema, the rows of a shard, loading a sweep;
- `manifest.py`: the config, versions and shard list of a sweep folder;
- `store.py`: the resumable store of shards;
- `checksums.py`: a record of every shard written, and the check of a runs folder;
- `progress.py`: each shard done, running, failed or pending.
"""
