"""A user limited to `~tenantA:*` reads, invalidates, lists and counts only its own keys through
every CACHE command; an unrestricted user is unaffected. Decisions (README): commands that name
their key are checked by the server (NOPERM); INVALIDATE, INVALIDATETAG and TAGSCAN act on and
list only permitted keys; STATS answers NOPERM to users without every key."""

import pytest

from cachelib import OK, Err, must_set, settag, gom, stats, tagscan_all, wait_until

NOPERM_PREFIX = "NOPERM"


def noperm(reply):
    return isinstance(reply, Err) and reply.msg.startswith(NOPERM_PREFIX)


@pytest.fixture
def tenants(server):
    admin = server.raw()
    assert admin.cmd("ACL", "SETUSER", "a", "on", ">pw", "~tenantA:*", "+@all") == OK
    assert admin.cmd("ACL", "SETUSER", "all", "on", ">pw", "~*", "+@all") == OK
    user = server.raw()
    assert user.cmd("AUTH", "a", "pw") == OK
    full = server.raw()
    assert full.cmd("AUTH", "all", "pw") == OK
    for i in range(3):
        must_set(admin, f"tenantA:{i}", f"a{i}", tags=["shared", "onlyA"])
        must_set(admin, f"tenantB:{i}", f"b{i}", tags=["shared"])
    return admin, user, full


def test_named_keys_are_checked_by_the_server(tenants):
    admin, user, _ = tenants
    assert user.cmd("CACHE.GET", "tenantA:0") == b"a0"
    for reply in (user.cmd("CACHE.GET", "tenantB:0"), gom(user, "tenantB:0"),
                  user.cmd("CACHE.TAGS", "tenantB:0"), settag(user, "tenantB:9", "x")):
        assert noperm(reply), reply
    assert admin.cmd("EXISTS", "tenantB:9") == 0


def test_pattern_invalidation_touches_only_permitted_keys(tenants):
    admin, user, _ = tenants
    assert user.cmd("CACHE.INVALIDATE", "*") == 3
    assert user.cmd("CACHE.INVALIDATE", "tenantB:*") == 0
    assert user.cmd("CACHE.INVALIDATE", "tenantB:0") == 0
    assert sorted(admin.cmd("KEYS", "*")) == [b"tenantB:0", b"tenantB:1", b"tenantB:2"]


def test_soft_pattern_invalidation_too(tenants):
    admin, user, _ = tenants
    assert user.cmd("CACHE.INVALIDATE", "*", "SOFT") == 3
    assert gom(admin, "tenantB:0")[0] == b"HIT"
    assert gom(admin, "tenantA:0")[0] == b"STALE"


def test_shared_tag_invalidation_touches_only_permitted_keys(tenants):
    admin, user, _ = tenants
    assert user.cmd("CACHE.INVALIDATETAG", "shared") == 3
    assert user.cmd("CACHE.INVALIDATETAG", "sh*") == 0
    assert tagscan_all(admin, "shared") == {b"tenantB:0", b"tenantB:1", b"tenantB:2"}


def test_large_shared_tag_is_checked_member_by_member(server):
    admin = server.raw()
    assert admin.cmd("ACL", "SETUSER", "a", "on", ">pw", "~tenantA:*", "+@all") == OK
    n = 1500  # more than the in-command limit: an unrestricted user would get a sweep
    admin.pipeline([["CACHE.SETTAGGED", f"tenant{'AB'[i % 2]}:{i}", "v", "TAGS", "big"]
                    for i in range(n)])
    user = server.raw()
    assert user.cmd("AUTH", "a", "pw") == OK
    assert user.cmd("CACHE.INVALIDATETAG", "big") == n // 2
    assert admin.cmd("DBSIZE") == n // 2
    assert all(k.startswith(b"tenantB:") for k in admin.cmd("KEYS", "*"))


def test_large_pattern_range_is_checked_key_by_key(server):
    admin = server.raw()
    assert admin.cmd("ACL", "SETUSER", "a", "on", ">pw", "~tenantA:*", "+@all") == OK
    n = 4000
    admin.pipeline([["CACHE.SETTAGGED", f"tenant{'AB'[i % 2]}:{i}", "v"] for i in range(n)])
    user = server.raw()
    assert user.cmd("AUTH", "a", "pw") == OK
    assert user.cmd("CACHE.INVALIDATE", "tenant*") == n // 2
    wait_until(lambda: admin.cmd("DBSIZE") == n // 2, timeout=10, what="invalidation")
    assert all(k.startswith(b"tenantB:") for k in admin.cmd("KEYS", "*"))


def test_tagscan_lists_only_permitted_keys(tenants):
    admin, user, full = tenants
    assert tagscan_all(user, "shared") == {b"tenantA:0", b"tenantA:1", b"tenantA:2"}
    assert tagscan_all(full, "shared") == tagscan_all(admin, "shared")
    assert len(tagscan_all(full, "shared")) == 6


def test_stats_need_every_key(tenants):
    _, user, full = tenants
    assert noperm(user.cmd("CACHE.STATS"))
    assert noperm(user.cmd("CACHE.STATS", "NAMESPACE", "tenantA"))
    assert stats(full)["entries"] == 6


def test_unrestricted_user_acts_on_everything(tenants):
    admin, _, full = tenants
    assert full.cmd("CACHE.INVALIDATETAG", "shared") == 6
    assert admin.cmd("DBSIZE") == 0
