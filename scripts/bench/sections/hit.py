"""Section 1: the hit path, GET against CACHE.GET and CACHE.GETORMARK (redis-benchmark), and
the module-API floor: CACHE.TAGS of a missing key, a module command that does almost nothing."""
from common import BenchServer, module_check, rbench_medians, VALUE100

LABEL = "1 hit path"


def run(S, res):
    with BenchServer() as srv:
        r = srv.client()
        # With a TTL like the entry's: the recipe an entry replaces is SET EX + GET.
        r.set("str:k", VALUE100, ex=3600)
        has_mod = module_check(srv, res)
        cmds = {"GET": ["GET", "str:k"]}
        if has_mod:
            try:
                r.execute_command("CACHE.SETTAGGED", "ent:k", VALUE100, "EX", 3600, "TAGS", "t1")
                cmds["CACHE.GET"] = ["CACHE.GET", "ent:k"]
                cmds["CACHE.GETORMARK"] = ["CACHE.GETORMARK", "ent:k"]
                cmds["CACHE.TAGS missing (floor)"] = ["CACHE.TAGS", "none:k"]
                v = r.execute_command("CACHE.GET", "ent:k")
                if v != VALUE100:
                    res.error("CACHE.GET correctness", f"CACHE.GET ent:k returned {v!r:.60}")
                st = r.execute_command("CACHE.GETORMARK", "ent:k")
                if not (isinstance(st, list) and st and st[0] in (b"HIT", "HIT") and st[1] == VALUE100):
                    res.error("CACHE.GETORMARK correctness", f"returned {st!r:.80}")
            except Exception as e:
                res.error("setup CACHE.SETTAGGED", e)
        for P in (1, 16):
            med = rbench_medians(srv, res, cmds, S["hit_reps"], S["hit_n"], P)
            for k, v in med.items():
                res.add(f"{k} -P {P} (50 clients, 100 B)", v, unit="ops/s")
            for k, goal in (("CACHE.GET", 0.95), ("CACHE.GETORMARK", 0.90)):
                if k in med and "GET" in med:
                    res.check(f"{k} / GET -P {P}", med[k] / med["GET"], ">=", goal, unit="x")
            floor = "CACHE.TAGS missing (floor)"
            if floor in med and "GET" in med:
                res.add(f"{floor} / GET -P {P}", med[floor] / med["GET"], unit="x")
