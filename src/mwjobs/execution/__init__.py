"""Running Python jobs (a service layer, above the queues and the group): what
``mwjobs run-jobs`` and the python dispatcher's workers do.

* :mod:`~mwjobs.execution.executor`: one runJobs.php-shaped run over a wiki's queues
  (limits, retries, backoff throttling, the ``--result=json`` document);
* :mod:`~mwjobs.execution.loop`: ``--wait``: run, wait for pushes, run again, stop cleanly;
* :mod:`~mwjobs.execution.backoff`: the host's shared backoff file;
* :mod:`~mwjobs.execution.forks`: ``--procs N`` children.
"""
