"""The Python file spark-submit runs: ``spark-submit … flows/spark_entry.py <stage> <args>``.
The code itself comes from ``--py-files`` (``tierlake package``)."""
import sys

from flows.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
