"""The Python file spark-submit runs. ``spark_entry.py job NAME PARAMS.json`` calls a job function
(``flows.spark_submit.JOBS``) with the JSON parameters a per-stage flow sent; anything else is a
``tierlake`` command line (``spark.mode: submit`` of a recipe). The code comes from ``--py-files``
(``tierlake package``)."""

import json
import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["job"]:
        from flows.spark_submit import job_function

        with open(sys.argv[3], encoding="utf-8") as fh:
            job_function(sys.argv[2])(**json.load(fh))
        sys.exit(0)
    from flows.cli import main

    sys.exit(main(sys.argv[1:]))
