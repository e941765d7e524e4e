"""The job model (layer 2, above the codec): what a job is, before any queue.

* :mod:`~mwjobs.model.data`: the data of a job: :class:`JobSpec` (what is pushed),
  :class:`QueuedJob` (what a queue hands out), :class:`JobState`;
* :mod:`~mwjobs.model.runnable`: the code that runs it: :class:`Job` subclasses with
  ``run()``, and MediaWiki's built-in ``null`` and duplicate jobs;
* :mod:`~mwjobs.model.registry`: job type name -> job class.
"""
