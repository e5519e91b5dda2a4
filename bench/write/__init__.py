"""The write-path bench's parts: the servers under load, the HTTP load, the workloads,
the pgbench baseline and the report; bench/write_path.py runs them in order."""
