"""Where independent tasks run: in this process, on a process pool, or on a Dask cluster, behind
one ``Executor.map`` (:mod:`.executors`)."""
