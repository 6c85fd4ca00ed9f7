// Cross-model tests: the blk-crypto keyslot policy (keyslots) drives the register model
// (ufshci_crypto) with Linux's 19-write sequences; the resulting event log must satisfy the
// traffic invariants, and the dm stale-slot scenario (drivers/md/dm-table.c: a reload does not
// evict the old table's keys) must be visible in it.
#include "icemu/models/dm_passthrough.hpp"
#include "icemu/models/keyslots.hpp"
#include "icemu/models/ufshci_crypto.hpp"

#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>

#include <map>

using namespace icemu::models;
using icemu::models::test::random_bytes;

namespace {

const ufshci::CryptoCap kCap{ufshci::AlgId::aes_xts, 0x0f, ufshci::KeySize::k256};

// One UFS controller as Linux drives it: a blk-crypto profile on top of the register model.
struct Controller : test::EngineLog {
    keyslots::Profile profile;
    std::map<keyslots::KeyId, Bytes>& keys;

    Controller(unsigned slots, std::map<keyslots::KeyId, Bytes>& k)
        : EngineLog(ufshci::Config{slots, {kCap}, true, false}, "ufs"), profile(slots), keys(k) {
        for (unsigned s = 0; s < slots; ++s) {
            evict_slot(s); // ufshcd_init_crypto: evict every slot
        }
        write(ufshci::kRegHce, 0x3);
    }
    // Turns the profile's new hardware operations into MMIO.
    void flush() {
        for (const auto& op : profile.hw_ops()) {
            if (op.kind == keyslots::HwOp::Kind::program) {
                program_slot(op.slot, keys.at(op.key), 0x80000008); // 4 KiB, cap 0
            } else {
                evict_slot(op.slot);
            }
        }
        profile.clear_hw_ops();
    }
    // One 4 KiB write with key `k` at `dun`, as blk-mq does: get a slot, I/O, put it.
    void io(keyslots::KeyId k, std::uint64_t dun) {
        const auto g = profile.get(k);
        flush();
        REQUIRE(g.slot.has_value());
        const ufshci::Request r{true, *g.slot, dun, dun * 4096, 4096, ufshci::CommandKind::write};
        const auto o = engine.submit(r);
        REQUIRE(o.ocs == 0);
        auto e = engine.predict_io(r, o);
        e.opcode = 0x2a;
        e.lba = dun;
        e.blocks = 1;
        e.block_size = 4096;
        e.queue = "sdb";
        push(e);
        profile.put(*g.slot);
    }
    void evict(keyslots::KeyId k) {
        profile.evict(k);
        flush();
    }
    void host_reset() {
        write(ufshci::kRegHce, 0x0); // ufshcd_hba_stop: wipes the slots
        profile.reprogram_all();     // ufshcd_crypto_enable, before HCE=1
        flush();
        write(ufshci::kRegHce, 0x3);
    }
    keyslots::TrafficChecker traffic() const {
        keyslots::TrafficChecker t(profile.num_slots());
        for (std::size_t i = 1; i < log.size(); ++i) {
            t.observe(log[i]);
        }
        return t;
    }
    std::vector<ufshci::LogReplay::Mismatch> replay() const {
        ufshci::LogReplay r(std::get<events::Realize>(log[0].body));
        for (std::size_t i = 1; i < log.size(); ++i) {
            r.apply(log[i]);
        }
        r.finish();
        return r.mismatches();
    }
};

bool holds(const keyslots::TrafficChecker& t, const std::string& fp) {
    for (const auto& k : t.slot_keys()) {
        if (k == fp) {
            return true;
        }
    }
    return false;
}

} // namespace

TEST_CASE("Linux-driven traffic with LRU replacement and a host reset satisfies every invariant",
          "[integration]") {
    std::map<keyslots::KeyId, Bytes> keys;
    for (keyslots::KeyId k = 1; k <= 6; ++k) {
        keys[k] = random_bytes(64);
    }
    Controller c(3, keys);
    for (keyslots::KeyId k = 1; k <= 6; ++k) { // more keys than slots: LRU reuse, no evicts
        c.io(k, k * 10);
        c.io(1 + k % 2, k); // keep keys 1 and 2 warm
    }
    c.evict(5);
    c.evict(3); // not in a slot any more: no MMIO
    c.host_reset();
    c.io(6, 99);
    c.io(1, 100);
    const auto t = c.traffic();
    for (const auto& f : t.findings()) {
        UNSCOPED_INFO(f.seq << " " << keyslots::to_string(f.kind) << ": " << f.detail);
    }
    CHECK(t.findings().empty());
    const auto m = c.replay();
    for (const auto& x : m) {
        UNSCOPED_INFO(x.seq << ": " << x.what);
    }
    CHECK(m.empty());
    CHECK_FALSE(holds(t, key_fingerprint(keys[5])));
}

TEST_CASE("after a dm table swap the old device keeps the key and a re-created key duplicates it",
          "[integration][dm]") {
    // The stale slot: fs key K via dm-linear -> ufs0; reload+resume to ufs1; REMOVE_KEY evicts
    // through the live table only (ufs1); ufs0 keeps K. A new blk_crypto_key with the same bytes
    // later used on ufs0 is programmed into another slot: the traffic shows a duplicate key.
    std::map<keyslots::KeyId, Bytes> keys{{1, random_bytes(64)}};
    std::map<std::string, Controller*> dev;
    Controller ufs0(4, keys);
    Controller ufs1(4, keys);
    dev["ufs0"] = &ufs0;
    dev["ufs1"] = &ufs1;
    const auto caps = dm::ufs_profile({kCap}, 4);
    const dm::DeviceProfiles profiles{{"ufs0", caps}, {"ufs1", caps}};
    dm::DmDevice dmdev(kernel::rules_for("6.12.117"));
    REQUIRE(dmdev.load(dm::Table{{dm::Target{"linear", {"ufs0"}}}}, profiles) == 0);
    REQUIRE(dmdev.resume());
    ufs0.io(1, 7); // I/O through dm reaches ufs0 with the fs DUN unchanged
    REQUIRE(dmdev.load(dm::Table{{dm::Target{"linear", {"ufs1"}}}}, profiles) == 0);
    REQUIRE(dmdev.resume());
    ufs1.io(1, 8);
    for (const auto& d : dmdev.evict_fanout()) { // REMOVE_KEY
        dev.at(d)->evict(1);
    }
    const std::string fp = key_fingerprint(keys[1]);
    CHECK_FALSE(holds(ufs1.traffic(), fp));
    CHECK(holds(ufs0.traffic(), fp)); // the stale slot the checker must report (invariant 4)

    keys[2] = keys[1]; // the key is added again: a new blk_crypto_key, same bytes
    ufs0.io(2, 9);     // LRU head is slot 1 (slot 0 was released last): a second copy
    const auto t = ufs0.traffic();
    REQUIRE(t.findings().size() == 1);
    CHECK(t.findings()[0].kind == keyslots::Finding::Kind::duplicate_key);
    CHECK(ufs0.replay().empty()); // the device itself behaved correctly
}
