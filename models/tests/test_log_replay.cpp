// Unit tests for ufshci::LogReplay: a log produced by driving the MMIO model replays cleanly,
// and each crafted defect is reported.
#include "icemu/models/ufshci_crypto.hpp"

#include "test_util.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace icemu::models;
using namespace icemu::models::ufshci;
using Catch::Matchers::ContainsSubstring;
using icemu::models::test::random_bytes;

namespace {

// Builds a log by driving an Engine the way Linux does and recording what it predicts.
struct LogBuilder : test::EngineLog {
    explicit LogBuilder(Config c) : EngineLog(std::move(c), "ufs0") {}

    events::Io io(bool ce, unsigned slot, std::uint64_t lba, std::uint64_t blocks) {
        Request r{ce, slot, lba * 7, lba * 4096, blocks * 4096, CommandKind::write};
        const Outcome o = engine.submit(r);
        events::Io e = engine.predict_io(r, o);
        e.lba = lba;
        e.blocks = blocks;
        e.block_size = 4096;
        e.opcode = 0x2a;
        e.queue = "sdb";
        if (o.error == IoError::injected) {
            push(events::Fault{events::FaultKind::ocs, engine.faults_remaining()});
        }
        push(e);
        return e;
    }
};

std::vector<LogReplay::Mismatch> replay(const std::vector<events::Event>& log) {
    LogReplay r(std::get<events::Realize>(log.at(0).body));
    for (std::size_t i = 1; i < log.size(); ++i) {
        r.apply(log[i]);
    }
    r.finish();
    return r.mismatches();
}

Config cfg() {
    Config c;
    c.slots = 4;
    c.caps = parse_crypto_caps("aes-xts-256:0x0f/aes-xts-128:0x08/aes-ecb-256:0x0f");
    return c;
}

LogBuilder linux_session() {
    LogBuilder b(cfg());
    for (unsigned s = 0; s < 4; ++s) {
        b.evict_slot(s); // probe
    }
    b.write(kRegHce, 0x3);
    b.program_slot(0, random_bytes(64), 0x80000008);
    b.program_slot(1, random_bytes(32), 0x80000108);
    b.io(true, 0, 10, 2);
    b.io(true, 1, 11, 1);
    b.io(false, 0, 12, 1);
    b.io(true, 2, 0, 1);                             // disarmed slot: OCS 9
    b.program_slot(3, random_bytes(64), 0x80000308); // capidx error
    b.io(true, 3, 0, 1);                             // invalid: OCS 9
    b.engine.inject_faults(1);
    b.io(true, 0, 13, 1);  // injected fault
    b.write(kRegHce, 0x0); // wipe on disable
    b.write(kRegHce, 0x3);
    b.io(true, 0, 10, 1); // slot wiped: OCS 9
    return b;
}

} // namespace

TEST_CASE("a log predicted by the register model replays without mismatches", "[replay]") {
    auto b = linux_session();
    const auto m = replay(b.log);
    for (const auto& x : m) {
        UNSCOPED_INFO(x.seq << ": " << x.what);
    }
    CHECK(m.empty());
    CHECK(b.log.size() == 20); // realize, 4 probe evicts, 13 session events, fault, wipe
}

TEST_CASE("replay reports a crypto I/O with a key other than the slot's", "[replay]") {
    auto b = linux_session();
    for (auto& e : b.log) {
        if (auto* io = std::get_if<events::Io>(&e.body); io && io->ce && io->ocs == 0) {
            io->key_fp = "0000000000000000";
            break;
        }
    }
    const auto m = replay(b.log);
    REQUIRE(m.size() == 1);
    CHECK_THAT(m[0].what, ContainsSubstring("key \"0000000000000000\", the slot table has"));
}

TEST_CASE("replay reports success on a disarmed slot", "[replay]") {
    auto b = linux_session();
    for (auto& e : b.log) {
        if (auto* io = std::get_if<events::Io>(&e.body); io && io->error == "disarmed") {
            io->ocs = 0;
            io->error.clear();
            break;
        }
    }
    const auto m = replay(b.log);
    REQUIRE_FALSE(m.empty());
    CHECK_THAT(m[0].what, ContainsSubstring("expects OCS 9 error \"disarmed\""));
}

TEST_CASE("replay reports a program accepted with a data unit the cap does not allow", "[replay]") {
    LogBuilder b(cfg());
    b.write(kRegHce, 0x3);
    b.program_slot(0, random_bytes(32), 0x80000101); // cap 1 allows 4 KiB only
    auto& p = std::get<events::Program>(b.log.back().body);
    REQUIRE(p.error == "dusize");
    p.ok = true;
    p.error.clear();
    const auto m = replay(b.log);
    REQUIRE(m.size() == 1);
    CHECK_THAT(m[0].what, ContainsSubstring("expects error \"dusize\""));
}

TEST_CASE("replay reports a missing wipe after HCE 1->0 with wipe-on-disable", "[replay]") {
    LogBuilder b(cfg());
    b.write(kRegHce, 0x3);
    b.program_slot(0, random_bytes(64), 0x80000008);
    b.write(kRegHce, 0x0);
    REQUIRE(std::holds_alternative<events::Wipe>(b.log.back().body));
    b.log.pop_back();
    const auto m = replay(b.log);
    REQUIRE(m.size() == 1);
    CHECK_THAT(m[0].what, ContainsSubstring("not followed by a wipe"));
}

TEST_CASE("replay reports a wrong was_armed and an unlogged injected fault", "[replay]") {
    auto b = linux_session();
    std::erase_if(b.log, [](const events::Event& e) {
        return std::holds_alternative<events::Fault>(e.body);
    });
    for (auto& e : b.log) {
        if (auto* ev = std::get_if<events::Evict>(&e.body)) {
            ev->was_armed = true;
            break;
        }
    }
    const auto m = replay(b.log);
    REQUIRE(m.size() == 2);
    CHECK_THAT(m[0].what, ContainsSubstring("was_armed"));
    CHECK_THAT(m[1].what, ContainsSubstring("no fault event precedes it"));
}

TEST_CASE("replay reports a refused request that claims to have moved data", "[replay]") {
    auto b = linux_session();
    for (auto& e : b.log) {
        if (auto* io = std::get_if<events::Io>(&e.body); io && io->error == "invalid") {
            io->status = 0;
            io->bytes = 4096;
            break;
        }
    }
    const auto m = replay(b.log);
    REQUIRE(m.size() == 1);
    CHECK_THAT(m[0].what, ContainsSubstring("status -1 and bytes 0"));
}

TEST_CASE("replay reports CE on a non-READ/WRITE opcode that was not refused", "[replay]") {
    auto b = linux_session();
    for (auto& e : b.log) {
        if (auto* io = std::get_if<events::Io>(&e.body); io && io->ce && io->ocs == 0) {
            io->opcode = 0x93; // WRITE SAME(16)
            break;
        }
    }
    const auto m = replay(b.log);
    REQUIRE(m.size() == 1);
    CHECK_THAT(m[0].what, ContainsSubstring("\"opcode\""));
}

TEST_CASE("replay accepts CE on WRITE AND VERIFY (10/12/16) as a WRITE", "[replay]") {
    // The device encrypts them (docs/device.md "Errors"); a replay that demanded an "opcode"
    // refusal would fail every such log.
    for (const unsigned opcode : {0x2eu, 0xaeu, 0x8eu}) {
        auto b = linux_session();
        for (auto& e : b.log) {
            if (auto* io = std::get_if<events::Io>(&e.body); io && io->ce) {
                io->opcode = opcode;
            }
        }
        const auto m = replay(b.log);
        for (const auto& x : m) {
            UNSCOPED_INFO(x.seq << ": " << x.what);
        }
        CHECK(m.empty());
    }
}

TEST_CASE("a log with a CE WRITE SAME refusal (io error \"opcode\") parses and replays",
          "[replay]") {
    auto b = linux_session();
    const Request req{true, 0, 0, 8 * 4096, 4 * 4096, CommandKind::other_data_out};
    events::Io refusal = b.engine.predict_io(req, b.engine.submit(req));
    refusal.opcode = 0x41; // WRITE SAME(10)
    refusal.lba = 8;
    refusal.blocks = 4;
    refusal.block_size = 4096;
    refusal.queue = "sdb";
    REQUIRE(refusal.error == "opcode");
    REQUIRE(refusal.ocs == kOcsInvalidCryptoConfig);
    b.push(refusal);
    // Through the text form, as icemu-check reads a log file.
    std::string text;
    for (const auto& e : b.log) {
        text += events::to_json_line(e) + "\n";
    }
    std::vector<events::Event> parsed;
    REQUIRE_NOTHROW(parsed = events::parse_log(text));
    const auto m = replay(parsed);
    for (const auto& x : m) {
        UNSCOPED_INFO(x.seq << ": " << x.what);
    }
    CHECK(m.empty());
}

TEST_CASE("replay accepts CE on CMD46/47 from the CQHCI front end only", "[replay]") {
    auto b = linux_session();
    for (auto& e : b.log) {
        if (auto* io = std::get_if<events::Io>(&e.body)) {
            io->opcode = 47; // CMD47 EXECUTE_WRITE_TASK
            io->queue = "cq:3";
        }
    }
    std::get<events::Realize>(b.log.at(0).body).frontend = "cqhci";
    const auto m = replay(b.log);
    for (const auto& x : m) {
        UNSCOPED_INFO(x.seq << ": " << x.what);
    }
    CHECK(m.empty());
    std::get<events::Realize>(b.log.at(0).body).frontend = "ufs";
    const auto u = replay(b.log);
    REQUIRE_FALSE(u.empty());
    CHECK_THAT(u[0].what, ContainsSubstring("CE on opcode 47 must be refused"));
}
