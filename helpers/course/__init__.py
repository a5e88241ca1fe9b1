"""Running the course: which servers the notebooks use, and whether a laptop is ready.

* ``connection``: ``connect()``, a Redis (or a Redis Cluster) found or started, in one line;
* ``doctor``: ``make doctor`` (and ``make lab``'s server check, ``--servers``);
* ``matrix``: ``make test-servers``, the whole suite once per server this machine has;
* ``site``: ``make html``, the executed notebooks as static pages, solutions left out.
"""
