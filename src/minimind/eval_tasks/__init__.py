"""lm-evaluation-harness tasks that ship with minimind: task YAMLs in this directory, their data
made from files every Python installation has (no download). `minimind.harness` always adds this
directory to lm_eval's task search path; `lm_eval --include_path <this dir>` finds them too.

    minimind_stdlib_docs   which documentation belongs to this function? (stdlib_docs.py)
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
