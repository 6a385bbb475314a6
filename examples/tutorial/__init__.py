"""The replay tutorial: a worker and a reducer over ``dump_xrd.cbors`` (a 3x3 STINS scan).

Run it with::

    dranspose replay -w examples.tutorial.worker:TutorialWorker \
        -r examples.tutorial.reducer:TutorialReducer -f dump_xrd.cbors --port 5010 --keep-alive
"""
