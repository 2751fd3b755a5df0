"""Training, evaluation and dataset preparation for `fer_model` (built on accelerate, datasets and evaluate).

Needs the train extra: `pip install -e ".[train]"`; without it, one line says so.
"""
import importlib.util as _util

_missing = [name for name in ("torch", "accelerate", "datasets", "evaluate", "timm") if _util.find_spec(name) is None]
if _missing:
    raise SystemExit(f"training needs {', '.join(_missing)}, which {'is' if len(_missing) == 1 else 'are'} "
                     "not installed: pip install -e \".[train]\"")
