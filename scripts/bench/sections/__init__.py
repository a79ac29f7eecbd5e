"""The benchmark's sections, in table order: one module each, with LABEL (the section column
of its rows) and run(S, res) (S: the sizes of common.SIZES; res: common.Results)."""
import importlib

NAMES = ["hit", "set", "tag", "pattern", "memory", "mixed", "stampede", "refresh", "cluster"]
SECTIONS = [(n, importlib.import_module(f"{__name__}.{n}")) for n in NAMES]
