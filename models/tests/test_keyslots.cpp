// Unit tests for keyslots.hpp: the blk-crypto profile policy (block/blk-crypto-profile.c) and
// the traffic invariants.
#include "icemu/models/keyslots.hpp"

#include <catch2/catch_test_macros.hpp>

#include <stdexcept>

using namespace icemu::models;
using namespace icemu::models::keyslots;
using Kind = HwOp::Kind;

TEST_CASE("slots start idle in index order", "[keyslots]") {
    Profile p(3);
    CHECK(p.idle_list() == std::deque<unsigned>{0, 1, 2});
    CHECK_THROWS_AS(Profile(0), std::invalid_argument);
}

TEST_CASE("a miss programs the least recently released idle slot without an evict", "[keyslots]") {
    Profile p(2);
    auto a = p.get(100);
    CHECK(a.slot == 0u);
    CHECK(a.programmed);
    auto b = p.get(200);
    CHECK(b.slot == 1u);
    p.put(1); // slot 1 released first
    p.put(0);
    CHECK(p.idle_list() == std::deque<unsigned>{1, 0});
    auto c = p.get(300); // replaces key 200 in slot 1, no evict issued
    CHECK(c.slot == 1u);
    CHECK(p.hw_ops() == std::vector<HwOp>{{Kind::program, 0, 100},
                                          {Kind::program, 1, 200},
                                          {Kind::program, 1, 300}});
    CHECK_FALSE(p.slot_of(200).has_value());
}

TEST_CASE("a hit takes a reference without touching hardware", "[keyslots]") {
    Profile p(2);
    p.get(7);
    p.put(0);
    p.clear_hw_ops();
    auto r = p.get(7);
    CHECK(r.slot == 0u);
    CHECK_FALSE(r.programmed);
    CHECK(p.hw_ops().empty());
    CHECK(p.refs(0) == 1);
    CHECK(p.idle_list() == std::deque<unsigned>{1});
    p.get(7);
    CHECK(p.refs(0) == 2);
    p.put(0);
    CHECK(p.idle_list() == std::deque<unsigned>{1}); // still referenced
    p.put(0);
    CHECK(p.idle_list() == std::deque<unsigned>{1, 0});
    CHECK(p.key_in(0) == 7u); // released slots keep their key
}

TEST_CASE("a get with every slot referenced would sleep", "[keyslots]") {
    Profile p(1);
    p.get(1);
    const auto r = p.get(2);
    CHECK(r.would_block);
    CHECK_FALSE(r.slot.has_value());
    CHECK(p.hw_ops().size() == 1);
}

TEST_CASE("a failed program leaves the slot's old key and LRU position", "[keyslots]") {
    Profile p(1);
    p.get(1);
    p.put(0);
    const auto r = p.get(2, true);
    CHECK(r.program_failed);
    CHECK_FALSE(r.slot.has_value());
    CHECK(p.key_in(0) == 1u);
    CHECK(p.idle_list() == std::deque<unsigned>{0});
}

TEST_CASE("evicting a key that is not in a slot touches no hardware", "[keyslots]") {
    Profile p(2);
    p.get(1);
    p.put(0);
    p.clear_hw_ops();
    CHECK(p.evict(99) == EvictResult::not_present);
    CHECK(p.hw_ops().empty());
}

TEST_CASE("evicting an idle key issues one evict and unlinks it in place", "[keyslots]") {
    Profile p(2);
    p.get(1);
    p.get(2);
    p.put(0);
    p.put(1);
    p.clear_hw_ops();
    CHECK(p.evict(1) == EvictResult::evicted);
    CHECK(p.hw_ops() == std::vector<HwOp>{{Kind::evict, 0, 1}});
    CHECK_FALSE(p.key_in(0).has_value());
    CHECK(p.idle_list() == std::deque<unsigned>{0, 1}); // position unchanged
    CHECK(p.evict(1) == EvictResult::not_present);
}

TEST_CASE("evicting a key still in use fails with EBUSY but still unlinks it", "[keyslots]") {
    Profile p(1);
    p.get(5);
    p.clear_hw_ops();
    CHECK(p.evict(5) == EvictResult::busy);
    CHECK(p.hw_ops().empty());
    CHECK_FALSE(p.slot_of(5).has_value());
}

TEST_CASE("a failed evict still unlinks the key", "[keyslots]") {
    Profile p(1);
    p.get(5);
    p.put(0);
    CHECK(p.evict(5, true) == EvictResult::failed);
    CHECK_FALSE(p.slot_of(5).has_value());
}

TEST_CASE("reprogram-all programs every slot holding a key in index order", "[keyslots]") {
    Profile p(4);
    p.get(10);
    p.get(20);
    p.get(30);
    p.put(0);
    p.evict(20 /* busy, unlinked */);
    p.clear_hw_ops();
    p.reprogram_all();
    CHECK(p.hw_ops() == std::vector<HwOp>{{Kind::program, 0, 10}, {Kind::program, 2, 30}});
}

TEST_CASE("put without a reference is a logic error", "[keyslots]") {
    Profile p(1);
    CHECK_THROWS_AS(p.put(0), std::logic_error);
}

// ---- TrafficChecker ---------------------------------------------------------------------------

namespace {
std::uint64_t g_seq = 0;
events::Event ev(events::Body b) {
    events::Event e;
    e.seq = g_seq++;
    e.ctrl = "ufs0";
    e.body = std::move(b);
    return e;
}
events::Program prog(unsigned slot, const std::string& fp) {
    events::Program p;
    p.slot = slot;
    p.capidx = 0;
    p.dusize = 4096;
    p.key_fp = fp;
    p.ok = true;
    return p;
}
events::Io io(int slot, const std::string& fp) {
    events::Io i;
    i.slot = slot;
    i.ce = true;
    i.key_fp = fp;
    i.dusize = 4096;
    return i;
}
bool has(const TrafficChecker& c, Finding::Kind k) {
    for (const auto& f : c.findings()) {
        if (f.kind == k) {
            return true;
        }
    }
    return false;
}
} // namespace

TEST_CASE("Linux-shaped traffic produces no findings", "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Evict{0, false})); // probe evicts every slot before HCE enable
    c.observe(ev(events::Evict{1, false}));
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(io(0, "aaaa")));
    c.observe(ev(events::Disarm{0})); // LRU replacement over slot 0: no evict
    c.observe(ev(prog(0, "bbbb")));
    c.observe(ev(io(0, "bbbb")));
    c.observe(ev(events::Disarm{0})); // evict of bbbb
    c.observe(ev(events::Evict{0, false}));
    CHECK(c.findings().empty());
    CHECK(c.slot_keys()[0].empty());
}

TEST_CASE("an evict of a slot holding no key after init is reported", "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(events::Evict{1, false}));
    REQUIRE(c.findings().size() == 1);
    CHECK(c.findings()[0].kind == Finding::Kind::evict_of_empty_slot);
    CHECK(c.findings()[0].slot == 1);
}

TEST_CASE("programming a key that another slot still holds is reported", "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(prog(1, "aaaa")));
    CHECK(has(c, Finding::Kind::duplicate_key));
}

TEST_CASE("a key the kernel holds as two blk_crypto_keys may sit in two slots, not three",
          "[keyslots][traffic]") {
    // fscrypt's IV_INO_LBLK_64 and IV_INO_LBLK_32 keys of one hardware-wrapped key: two
    // blk_crypto_keys with the same ephemeral blob, hence the same inline key.
    TrafficChecker c(3);
    c.allow_copies("aaaa", 2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(prog(1, "aaaa")));
    CHECK(c.findings().empty());
    c.observe(ev(prog(2, "aaaa")));
    REQUIRE(c.findings().size() == 1);
    CHECK(c.findings()[0].kind == Finding::Kind::duplicate_key);
    CHECK(c.findings()[0].slot == 2);
}

TEST_CASE("after a machine reset the next probe may evict empty slots and reprogram keys",
          "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(events::Disarm{0}));
    c.observe(ev(events::Evict{0, true}));
    // system_reset with no slot armed: the device logs nothing; the new boot's probe evicts
    // every slot before its first enable.
    c.reset();
    c.observe(ev(events::Evict{0, false}));
    c.observe(ev(events::Evict{1, false}));
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(1, "aaaa")));
    CHECK(c.findings().empty());
    TrafficChecker d(2); // without the reset the same evictions are of empty slots
    d.observe(ev(events::Enable{true, true}));
    d.observe(ev(events::Evict{0, false}));
    CHECK(has(d, Finding::Kind::evict_of_empty_slot));
}

TEST_CASE("reprogramming the same key into the same slot is not a duplicate",
          "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(prog(0, "aaaa")));
    CHECK(c.findings().empty());
}

TEST_CASE("an enable after a wipe without reprogramming a held key is reported",
          "[keyslots][traffic]") {
    TrafficChecker c(3);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(prog(2, "cccc")));
    c.observe(ev(events::Enable{false, false}));
    c.observe(ev(events::Wipe{events::WipeReason::disable, 2}));
    c.observe(ev(prog(0, "aaaa"))); // slot 2 forgotten
    c.observe(ev(events::Enable{true, true}));
    REQUIRE(c.findings().size() == 1);
    CHECK(c.findings()[0].kind == Finding::Kind::missing_reprogram);
    CHECK(c.findings()[0].slot == 2);
}

TEST_CASE("a full reprogram after a wipe satisfies the reset invariant", "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(1, "bbbb")));
    c.observe(ev(events::Enable{false, false}));
    c.observe(ev(events::Wipe{events::WipeReason::disable, 1}));
    c.observe(ev(prog(1, "bbbb")));
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(io(1, "bbbb")));
    CHECK(c.findings().empty());
}

TEST_CASE("crypto I/O on an empty slot or with another key is reported", "[keyslots][traffic]") {
    TrafficChecker c(2);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(io(0, "aaaa")));
    CHECK(has(c, Finding::Kind::io_on_unprogrammed_slot));
    c.observe(ev(prog(1, "bbbb")));
    c.observe(ev(io(1, "cccc")));
    CHECK(has(c, Finding::Kind::io_key_mismatch));
}

TEST_CASE("crypto I/O on a slot the wipe emptied, before its reprogram, is reported once",
          "[keyslots][traffic]") {
    TrafficChecker c(4);
    c.observe(ev(events::Enable{true, true}));
    c.observe(ev(prog(0, "aaaa")));
    c.observe(ev(prog(1, "bbbb")));
    c.observe(ev(prog(2, "cccc")));
    c.observe(ev(prog(3, "dddd")));
    c.observe(ev(events::Disarm{1})); // slot 1 holds no armed key at the wipe
    c.observe(ev(events::Enable{false, false}));
    const std::uint64_t wipe_seq = g_seq;
    c.observe(ev(events::Wipe{events::WipeReason::disable, 3}));
    c.observe(ev(prog(2, "cccc")));         // reprogrammed
    c.observe(ev(events::Evict{3, false})); // dropped by the kernel
    c.observe(ev(events::Enable{true, true}));
    events::Io refused = io(0, "");
    refused.ocs = 9;
    refused.error = "disarmed";
    c.observe(ev(refused));
    c.observe(ev(io(0, ""))); // the same slot again: one finding per slot and wipe
    c.observe(ev(io(1, "")));
    c.observe(ev(io(2, "cccc")));
    c.observe(ev(io(3, "")));
    std::vector<Finding> got;
    for (const auto& f : c.findings()) {
        if (f.kind == Finding::Kind::io_before_reprogram) {
            got.push_back(f);
        }
    }
    REQUIRE(got.size() == 1);
    CHECK(got[0].slot == 0);
    CHECK(got[0].detail == "crypto I/O on slot 0 (refused: disarmed) after the wipe at seq " +
                               std::to_string(wipe_seq) + ", before key aaaa was reprogrammed");
    CHECK(to_string(Finding::Kind::io_before_reprogram) == "io-before-reprogram");
}
