"""Section 5: memory per entry, CACHE.SETTAGGED against SET EX + 3 SADD."""
import random

from common import BenchServer, bulk_load, log, module_check, resp, used_memory, VALUE100

LABEL = "5 memory"


def run(S, res):
    N = S["mem_n"]
    rnd = random.Random(5)
    tags = [["t:%d" % x for x in rnd.sample(range(10000), 3)] for _ in range(N)]
    with BenchServer() as srv:
        r = srv.client()
        has_mod = module_check(srv, res)
        recipe = None
        try:
            r.flushall()
            base = used_memory(r)
            log(f"  recipe: {N:,} x SET EX (100 B) + 3 SADD")
            bulk_load(srv.port, lambda i: resp("SET", f"e:{i}", VALUE100, "EX", 3600), N)
            mid = used_memory(r)
            bulk_load(srv.port, lambda i: b"".join(resp("SADD", t, f"e:{i}") for t in tags[i]), N, lines_per_cmd=3)
            end = used_memory(r)
            recipe = (end - base) / N
            res.add("recipe: string + 3 tag sets per entry", recipe, unit="B",
                    note=f"string {(mid - base) / N:.0f} B + tag sets {(end - mid) / N:.0f} B")
            res.add("recipe: MEMORY USAGE of one string", r.memory_usage("e:1"), unit="B")
        except Exception as e:
            res.error("recipe", e)
        if has_mod:
            try:
                r.flushall()
                base = used_memory(r)
                info0 = r.info("cache")
                log(f"  module: {N:,} x CACHE.SETTAGGED (100 B, 3 tags of 10,000)")
                bulk_load(srv.port, lambda i: resp("CACHE.SETTAGGED", f"e:{i}", VALUE100, "EX", 3600, "TAGS", *tags[i]), N)
                end = used_memory(r)
                per = (end - base) / N
                if recipe:
                    res.check("module: entry + index per entry", per, "<=", 0.9 * recipe, unit="B",
                              goal=f"<= 0.9 x recipe ({0.9 * recipe:.0f} B)", note=f"{per / recipe:.2f}x recipe")
                else:
                    res.add("module: entry + index per entry", per, unit="B")
                try:
                    res.add("module: MEMORY USAGE of one entry", r.memory_usage("e:1"), unit="B")
                except Exception as e:
                    res.error("module: MEMORY USAGE", e)
                info = r.info("cache")
                fld = next((k for k in info if "index" in k and "bytes" in k), None)
                if fld is None:
                    fld = next((k for k in info if "index" in k and ("mem" in k or "size" in k)), None)
                if fld is not None:
                    idx = (float(info[fld]) - float(info0.get(fld, 0) or 0)) / N
                    res.check(f"module: tag index per entry (INFO cache {fld})", idx, "<=", 100, unit="B")
                else:
                    res.add("module: tag index per entry (INFO cache *index*bytes*)", None, "<= 128 B", "n/a",
                            note="INFO cache has no index byte field: " + ",".join(sorted(info)[:12]))
            except Exception as e:
                res.error("module", e)
