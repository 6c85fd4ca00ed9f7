// Every OCS error case of docs/device.md "Errors", on both queue types, with the medium and
// the guest buffers untouched; fault injection over QMP. Expected outcomes: the model.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <algorithm>

#include "device/modelled_rig.hpp"

using namespace icemu;
using test::CryptoOptions;
using test::ModelledRig;
namespace mu = icemu::models::ufshci;

namespace {

// Medium, pre-filled so that "untouched" is visible, checked as a whole before and after.
struct ErrorCase {
    ModelledRig& r;
    std::vector<std::uint8_t> before;

    explicit ErrorCase(ModelledRig& rig) : r(rig), before(rig.rig().whole_medium(0, 0)) {}

    void expect_refused(const test::IoCheck& c, std::uint8_t ocs) {
        INFO(c.divergence);
        CHECK(c.ok());
        CHECK(c.got.ocs == ocs);
        CHECK(test::changed_blocks(before, r.rig().whole_medium(0, 0)) == "");
        CHECK(r.rig().machine().alive());
    }
};

const char* queue_name(bool mcq) {
    return mcq ? "MCQ" : "legacy doorbell";
}

} // namespace

TEST_CASE("a CE request while HCE.CGE is 0 gets INVALID_CRYPTO_CONFIG and moves no data",
          "[device][crypto][errors]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    CryptoOptions o;
    o.mcq = mcq;
    o.cge = false;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 1), 4096);
    ErrorCase ec(r);
    const auto data = test::pattern_bytes(8192, 2);
    ec.expect_refused(r.write(0, 0, 4, data, {true, 0, 1}), ufs::ocs::kInvalidCryptoConfig);
    ec.expect_refused(r.read(0, 0, 4, 2, {true, 0, 1}), ufs::ocs::kInvalidCryptoConfig);
    // CE=0 still works.
    CHECK(r.write(0, 0, 4, data, {}).ok());
}

TEST_CASE("a CCI at or beyond the number of keyslots gets INVALID_CRYPTO_CONFIG",
          "[device][crypto][errors]") {
    const bool mcq = GENERATE(false, true);
    const std::uint8_t cci = GENERATE(std::uint8_t{4}, std::uint8_t{5}, std::uint8_t{255});
    INFO(queue_name(mcq) << ", CCI " << int{cci});
    CryptoOptions o;
    o.mcq = mcq;
    o.slots = 4;
    ModelledRig r(test::crypto_controller(o));
    for (unsigned s = 0; s < 4; ++s) {
        r.program(0, s, test::test_cryptokey(256, s), 4096);
    }
    ErrorCase ec(r);
    ec.expect_refused(r.write(0, 0, 0, test::pattern_bytes(4096, 3), {true, cci, 0}),
                      ufs::ocs::kInvalidCryptoConfig);
    ec.expect_refused(r.read(0, 0, 0, 1, {true, cci, 0}), ufs::ocs::kInvalidCryptoConfig);
}

TEST_CASE("a never-programmed or evicted slot gets INVALID_CRYPTO_CONFIG",
          "[device][crypto][errors]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    CryptoOptions o;
    o.mcq = mcq;
    o.slots = 8;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 6, test::test_cryptokey(256, 4), 4096);
    r.evict(0, 6);
    ErrorCase ec(r);
    const auto data = test::pattern_bytes(4096, 5);
    ec.expect_refused(r.write(0, 0, 1, data, {true, 2, 0}), ufs::ocs::kInvalidCryptoConfig);
    ec.expect_refused(r.write(0, 0, 1, data, {true, 6, 0}), ufs::ocs::kInvalidCryptoConfig);
    ec.expect_refused(r.read(0, 0, 1, 1, {true, 6, 0}), ufs::ocs::kInvalidCryptoConfig);
}

namespace {

struct BadConfig {
    const char* what;
    std::uint32_t dword16;
};

} // namespace

TEST_CASE("a slot armed with an invalid configuration is unusable", "[device][crypto][errors]") {
    // cap 0: AES-256-XTS 4 KiB only; cap 1: AES-ECB; cap 2: AES-192-XTS; cap 3: AES-512-XTS.
    const auto bad = GENERATE(
        BadConfig{"CAPIDX beyond CC", ufs::kCfgEnable | (4u << 8) | 0x08},
        BadConfig{"DUSIZE zero", ufs::kCfgEnable | 0x00},
        BadConfig{"DUSIZE not one-hot", ufs::kCfgEnable | 0x0c},
        BadConfig{"DUSIZE not in the cap's SDUSB", ufs::kCfgEnable | 0x01},
        BadConfig{"an unimplemented algorithm (AES-ECB)", ufs::kCfgEnable | (1u << 8) | 0x08},
        BadConfig{"an unimplemented key size (AES-192-XTS)", ufs::kCfgEnable | (2u << 8) | 0x08},
        BadConfig{"an unimplemented key size (AES-512-XTS)", ufs::kCfgEnable | (3u << 8) | 0x08});
    const bool mcq = GENERATE(false, true);
    INFO(bad.what << ", " << queue_name(mcq));
    CryptoOptions o;
    o.caps = "aes-xts-256:0x08/aes-ecb-256:0x08/aes-xts-192:0x08/aes-xts-512:0x08";
    o.mcq = mcq;
    o.slots = 4;
    ModelledRig r(test::crypto_controller(o));
    r.program_raw(0, 1, test::test_cryptokey(256, 6), bad.dword16);
    REQUIRE(r.model().slot(1).armed);
    REQUIRE_FALSE(r.model().slot(1).valid());
    // dword 16 reads back what was written even though the slot is unusable.
    CHECK(r.host().rreg(r.caps().cfg_offset(1) + 0x40) == bad.dword16);
    ErrorCase ec(r);
    ec.expect_refused(r.write(0, 0, 2, test::pattern_bytes(8192, 7), {true, 1, 0}),
                      ufs::ocs::kInvalidCryptoConfig);
    ec.expect_refused(r.read(0, 0, 2, 2, {true, 1, 0}), ufs::ocs::kInvalidCryptoConfig);
}

TEST_CASE("a transfer whose start or length is not a multiple of the data unit is refused",
          "[device][crypto][errors]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    CryptoOptions o;
    o.caps = "aes-xts-256:0xff";
    o.mcq = mcq;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 8), 8192);
    r.program(0, 1, test::test_cryptokey(256, 9), 65536);
    ErrorCase ec(r);
    const auto one = test::pattern_bytes(4096, 10);
    const auto two = test::pattern_bytes(8192, 11);
    SECTION("start not aligned to 8 KiB") {
        ec.expect_refused(r.write(0, 0, 1, two, {true, 0, 0}), ufs::ocs::kInvalidCryptoConfig);
        ec.expect_refused(r.read(0, 0, 3, 2, {true, 0, 0}), ufs::ocs::kInvalidCryptoConfig);
    }
    SECTION("length not a multiple of 8 KiB") {
        ec.expect_refused(r.write(0, 0, 2, one, {true, 0, 0}), ufs::ocs::kInvalidCryptoConfig);
        ec.expect_refused(r.read(0, 0, 2, 3, {true, 0, 0}), ufs::ocs::kInvalidCryptoConfig);
    }
    SECTION("32 KiB into a 64 KiB data unit slot") {
        const auto part = test::pattern_bytes(32768, 12);
        ec.expect_refused(r.write(0, 0, 16, part, {true, 1, 0}), ufs::ocs::kInvalidCryptoConfig);
    }
    // The aligned request right after works.
    CHECK(r.write(0, 0, 2, two, {true, 0, 3}).ok());
}

TEST_CASE("WRITE SAME with CE set is refused because the engine cannot encrypt it, and the "
          "log of the refusal replays cleanly",
          "[device][crypto][errors]") {
    CryptoOptions o;
    o.event_log = true;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 13), 4096);
    ErrorCase ec(r);
    ufs::Request req;
    req.cdb = {0x41, 0, 0, 0, 0, 8, 0, 0, 4}; // WRITE SAME(10) LBA 8, 4 blocks
    req.dir = ufs::DataDir::to_device;
    req.out = test::pattern_bytes(4096, 14);
    req.crypto = {true, 0, 0};
    ec.expect_refused(r.command(0, req, mu::CommandKind::other_data_out, 8, 4 * 4096),
                      ufs::ocs::kInvalidCryptoConfig);
    // The refusal is logged as io error "opcode", which the parser accepts and the replay
    // (icemu-check's) expects.
    r.rig().machine().clock_step(1000);
    const auto log = r.rig().log_events(0);
    REQUIRE_FALSE(log.empty());
    const auto* io = std::get_if<models::events::Io>(&log.back().body);
    REQUIRE(io != nullptr);
    CHECK(io->error == "opcode");
    CHECK(io->opcode == 0x41);
    CHECK(r.replay_log(0) == "");
}

TEST_CASE("READ or WRITE with CE set and PRDTL=0 completes with an error and QEMU survives",
          "[device][crypto][errors][prdtl0]") {
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    CryptoOptions o;
    o.mcq = mcq;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 15), 4096);
    const auto before = r.rig().whole_medium(0, 0);
    ufs::Request req;
    req.cdb = ufs::cdb_write10(0, 1);
    req.dir = ufs::DataDir::to_device;
    req.out = test::pattern_bytes(4096, 16);
    req.crypto = {true, 0, 0};
    req.no_prdt = true;
    const auto c = r.host().submit(req);
    CHECK(c.ocs == ufs::ocs::kMismatchDataBufSize);
    CHECK(r.rig().machine().alive());
    CHECK(test::changed_blocks(before, r.rig().whole_medium(0, 0)) == "");
    CHECK(r.host().nop_out() == ufs::ocs::kSuccess);
}

TEST_CASE("a CE transfer whose PRDT is shorter than the command is refused with nothing written",
          "[device][crypto][errors]") {
    const bool mcq = GENERATE(false, true);
    const bool write = GENERATE(false, true);
    INFO(queue_name(mcq) << (write ? ", WRITE(10)" : ", READ(10)"));
    CryptoOptions o;
    o.mcq = mcq;
    o.event_log = true;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 19), 4096);
    const auto before = r.rig().whole_medium(0, 0);
    // The UPIU announces 3 blocks; the PRDT covers 2 of them.
    ufs::Request req;
    req.cdb = write ? ufs::cdb_write10(4, 3) : ufs::cdb_read10(4, 3);
    req.dir = write ? ufs::DataDir::to_device : ufs::DataDir::from_device;
    if (write) {
        req.out = test::pattern_bytes(3 * 4096, 20);
    } else {
        req.in_len = 3 * 4096;
    }
    req.segments = {4096, 4096};
    req.short_prdt = true;
    req.crypto = {true, 0, 0};
    const auto c = r.host().submit(req);
    r.rig().machine().clock_step(1000);
    INFO("last event: " << models::events::to_json_line(r.rig().log_events(0).back()));
    CHECK(c.ocs == ufs::ocs::kMismatchDataBufSize);
    CHECK(test::changed_blocks(before, r.rig().whole_medium(0, 0)) == "");
    if (!write) {
        CHECK(std::all_of(c.in.begin(), c.in.end(), [](auto b) { return b == 0xa5; }));
    }
}

TEST_CASE("injected faults fail the next N CE requests with GENERAL_CRYPTO_ERROR",
          "[device][crypto][errors][faults]") {
    const bool mcq = GENERATE(false, true);
    const bool fatal = GENERATE(false, true);
    INFO(queue_name(mcq) << (fatal ? ", fatal (IS.CEFES)" : ", OCS only"));
    CryptoOptions o;
    o.mcq = mcq;
    ModelledRig r(test::crypto_controller(o));
    r.program(0, 0, test::test_cryptokey(256, 17), 4096);
    const auto data = test::pattern_bytes(8192, 18);
    r.inject_faults(0, 2, fatal);
    ErrorCase ec(r);
    // A CE=0 request does not consume a fault.
    {
        const auto p = r.read(0, 0, 0, 1, {});
        INFO(p.divergence);
        CHECK(p.ok());
        CHECK(p.got.ocs == ufs::ocs::kSuccess);
    }
    const auto f1 = r.write(0, 0, 10, data, {true, 0, 4});
    ec.expect_refused(f1, ufs::ocs::kGeneralCryptoError);
    CHECK(((f1.got.is & ufs::bits::kIsCefes) != 0) == fatal);
    const auto f2 = r.read(0, 0, 10, 2, {true, 0, 4});
    ec.expect_refused(f2, ufs::ocs::kGeneralCryptoError);
    // The third one goes through.
    const auto ok = r.write(0, 0, 10, data, {true, 0, 4});
    INFO(ok.divergence);
    CHECK(ok.ok());
    CHECK(ok.got.ocs == ufs::ocs::kSuccess);
    const auto state = r.rig().machine().qom_get(r.rig().qom_path(), "crypto-state");
    CHECK(state["counters"]["faults"] == 2);
    CHECK(r.rig().machine().qom_get(r.rig().qom_path(), "crypto-fault-count") == 0);
}

TEST_CASE("an injected fault is taken before the other crypto checks",
          "[device][crypto][errors][faults]") {
    // docs/device.md "Errors": missing PRDT -> injected fault -> CGE -> CCI -> disarmed -> ...
    const bool mcq = GENERATE(false, true);
    INFO(queue_name(mcq));
    CryptoOptions o;
    o.mcq = mcq;
    o.cge = GENERATE(true, false);
    ModelledRig r(test::crypto_controller(o));
    r.inject_faults(0, 2, false);
    ErrorCase ec(r);
    // Slot 7 was never programmed (and CGE may be 0): without the faults these would be 0x9.
    ec.expect_refused(r.write(0, 0, 0, test::pattern_bytes(4096, 21), {true, 7, 0}),
                      ufs::ocs::kGeneralCryptoError);
    ec.expect_refused(r.read(0, 0, 0, 1, {true, 200, 0}), ufs::ocs::kGeneralCryptoError);
    CHECK(r.rig().machine().qom_get(r.rig().qom_path(), "crypto-fault-count") == 0);
    ec.expect_refused(r.write(0, 0, 0, test::pattern_bytes(4096, 22), {true, 7, 0}),
                      ufs::ocs::kInvalidCryptoConfig);
}
