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

// ---- hardware-wrapped keys (docs/device.md "Hardware-wrapped keys") ----------------------------

namespace {

// A hand-written log of a device with the key manager: AES-256-XTS 512..4096 (cap 0) and
// AES-128-XTS 4096 (cap 1), 4 slots, raw keys accepted or not.
struct KmLog {
    std::vector<events::Event> log;
    explicit KmLog(std::optional<bool> wrapped = true, std::optional<bool> raw = true) {
        events::Realize r;
        r.slots = 4;
        r.cfgptr = 0x20;
        r.caps = {{0, 0, 0x0f, 3}, {1, 0, 0x08, 1}};
        r.wipe_on_disable = true;
        r.frontend = "ufs";
        r.wrapped_keys = wrapped;
        r.raw_keys = raw;
        push(r);
        push(events::Enable{true, true});
    }
    void push(events::Body b) {
        events::Event e;
        e.seq = log.size();
        e.ctrl = "ufs0";
        e.body = std::move(b);
        log.push_back(std::move(e));
    }
    void km(events::KmOp op, std::optional<unsigned> slot = std::nullopt) {
        push(events::Km{op, true, "", slot, "1a2b3c4d5e6f7081"});
    }
    void program(unsigned slot, unsigned capidx, bool wrapped, bool ok = true,
                 std::string error = "") {
        events::Program p;
        p.slot = slot;
        p.capidx = capidx;
        p.dusize = 4096;
        p.key_fp = "0123456789abcdef";
        p.ok = ok;
        p.error = std::move(error);
        if (wrapped) {
            p.wrapped = true;
        }
        push(p);
    }
    void io(unsigned slot, std::string error = "") {
        events::Io x;
        x.slot = static_cast<int>(slot);
        x.ce = true;
        x.op = events::IoOp::write;
        x.opcode = 0x2a;
        x.lba = 8;
        x.blocks = 1;
        x.bytes = error.empty() ? 4096 : 0;
        x.block_size = 4096;
        x.dusize = error.empty() ? 4096 : 0;
        x.key_fp = error.empty() ? "0123456789abcdef" : "";
        x.ocs = error.empty() ? 0 : 9;
        x.status = error.empty() ? 0 : -1;
        x.queue = "sdb";
        x.error = std::move(error);
        push(x);
    }
    std::string mismatches() const {
        std::string s;
        for (const auto& m : replay(log)) {
            s += std::to_string(m.seq) + ": " + m.what + "\n";
        }
        return s;
    }
};

} // namespace

TEST_CASE("replay: a wrapped key programmed by the key manager arms its slot like a raw one",
          "[replay][hw_wrapped]") {
    KmLog k;
    k.km(events::KmOp::import_key);
    k.km(events::KmOp::prepare);
    k.km(events::KmOp::program, 1);
    k.program(1, 0, true);
    k.io(1);
    k.program(0, 1, false); // raw keys are accepted too (AES-128-XTS is fine for them)
    k.push(events::Evict{1, true});
    k.io(1, "disarmed");
    CHECK(k.mismatches().empty());
}

TEST_CASE("replay reports a wrapped program the key manager should have refused",
          "[replay][hw_wrapped]") {
    KmLog k;
    k.km(events::KmOp::program, 2);
    k.program(2, 1, true); // AES-128-XTS: PROGRAM needs an AES-256-XTS capability
    k.km(events::KmOp::program, 3);
    k.program(3, 5, true); // no such capability
    k.program(0, 0, true, false, "cipher");
    const std::string m = k.mismatches();
    CHECK_THAT(m, ContainsSubstring("3: wrapped program of slot 2 with capidx 1"));
    CHECK_THAT(m, ContainsSubstring("5: wrapped program of slot 3 with capidx 5"));
    CHECK_THAT(m, ContainsSubstring("6: wrapped program of slot 0 logged error \"cipher\""));
}

TEST_CASE("replay reports key-manager events on a device without the key manager",
          "[replay][hw_wrapped]") {
    KmLog k(std::nullopt, std::nullopt);
    k.km(events::KmOp::derive);
    k.program(1, 0, true);
    const std::string m = k.mismatches();
    CHECK_THAT(m, ContainsSubstring("2: km event on a device without the key manager"));
    CHECK_THAT(m, ContainsSubstring("3: wrapped program of slot 1 on a device without"));
}

TEST_CASE("replay: a wrapped-only device refuses every raw key with key-type",
          "[replay][hw_wrapped]") {
    SECTION("raw_keys false: key-type, and the slot is unusable") {
        KmLog k(true, false);
        k.program(0, 0, false, false, "key-type");
        k.io(0, "invalid");
        // even with a config the engine would refuse anyway: the key type is checked first
        k.program(1, 7, false, false, "key-type");
        CHECK(k.mismatches().empty());
        KmLog bad(true, false);
        bad.program(0, 0, false); // accepted
        bad.program(1, 7, false, false, "capidx");
        const std::string m = bad.mismatches();
        CHECK_THAT(m, ContainsSubstring("2: program of slot 0 logged ok, the model expects "
                                        "error \"key-type\""));
        CHECK_THAT(m, ContainsSubstring("3: program of slot 1 logged error \"capidx\", the "
                                        "model expects error \"key-type\""));
    }
    SECTION("raw_keys true (or absent): key-type is a mismatch") {
        for (const auto raw : {std::optional<bool>(true), std::optional<bool>()}) {
            KmLog k(true, raw);
            k.program(0, 0, false, false, "key-type");
            CHECK_THAT(k.mismatches(), ContainsSubstring("2: program of slot 0 logged error "
                                                         "\"key-type\", the model expects ok"));
        }
    }
}
