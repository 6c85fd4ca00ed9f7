// The CQHCI engine of sdhci-pci (cqhci=on) with its soldered eMMC: registers and reset values,
// reads and writes through task / link / transfer descriptors with and without crypto, crypto
// error bits, halt / clear, and queue depth > 1. Expected ciphertext: icemu::models::xts only.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "device/test_cqhci_rig.hpp"

using namespace icemu;
using cqhci::Crypto;
namespace reg = cqhci::reg;
namespace bits = cqhci::bits;

using namespace icemu::cqhci_test;

TEST_CASE("sdhci-pci without cqhci keeps its 256-byte BAR and default subsystem",
          "[device][cqhci][baseline]") {
    EmmcOptions o;
    o.cqhci = false;
    o.emmc = false;
    EmmcRig r(o);
    CHECK(r.host().bar_size() == 0x100);
    CHECK(r.host().subsystem() != ((std::uint32_t{cqhci::kCqhciSubsystem} << 16) | 0x1b36));
    CHECK((r.host().rsdhci(cqhci::sdhci::kCapab) & (1u << 28)) == 0u);
}

TEST_CASE("cqhci=on: BAR layout, subsystem ID and CQHCI reset values", "[device][cqhci]") {
    const bool crypto = GENERATE(false, true);
    INFO("crypto=" << crypto);
    EmmcRig r(cq_options(crypto));
    auto& h = r.host();
    CHECK(h.subsystem() == ((std::uint32_t{cqhci::kCqhciSubsystem} << 16) | 0x1b36));
    CHECK(h.bar_size() == (crypto ? 0x2000u : 0x400u));
    CHECK((h.rsdhci(cqhci::sdhci::kCapab) & (1u << 28)) != 0u); // 64-bit DMA
    CHECK(h.rreg(reg::kVer) == 0x0510);
    CHECK(((h.rreg(reg::kCap) & bits::kCapCs) != 0) == crypto);
    CHECK(h.rreg(reg::kCfg) == 0);
    CHECK(h.rreg(reg::kCtl) == 0);
    CHECK(h.rreg(reg::kIs) == 0);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kTcn) == 0);
    CHECK(h.rreg(reg::kSsc1) == 0x00011000u);
    CHECK(h.rreg(reg::kTerri) == 0);
    if (crypto) {
        const std::uint32_t ccap = h.rreg(reg::kCcap);
        CHECK((ccap & 0xff) == 1);                      // one capability
        CHECK(((ccap >> 8) & 0xff) == 31);              // 32 keyslots
        CHECK(((ccap >> 24) & 0xff) == 2);              // x-CRYPTOCFG at CQHCI + 0x200
        CHECK(h.rreg(reg::kCryptoCap0) == 0x00030f00u); // AES-XTS, 512..4096, 256-bit
        // CFG.CRYPTO_GENERAL_ENABLE is writable only with crypto
        h.wreg(reg::kCfg, bits::kCfgCge);
        CHECK(h.rreg(reg::kCfg) == bits::kCfgCge);
    } else {
        CHECK(h.rreg(reg::kCcap) == 0);
        h.wreg(reg::kCfg, bits::kCfgCge);
        CHECK(h.rreg(reg::kCfg) == 0);
    }
}

TEST_CASE("cqhci halt and clear-all-tasks are acknowledged at once", "[device][cqhci]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    h.enable(false);
    h.wreg(reg::kIste, bits::kIsHac | bits::kIsTcl);
    h.wreg(reg::kCtl, bits::kCtlHalt);
    CHECK(h.rreg(reg::kCtl) == bits::kCtlHalt);
    CHECK((h.rreg(reg::kIs) & bits::kIsHac) != 0);
    h.wreg(reg::kCtl, bits::kCtlHalt | bits::kCtlClearAll);
    CHECK(h.rreg(reg::kCtl) == bits::kCtlHalt); // CLEAR_ALL self-clears
    CHECK((h.rreg(reg::kIs) & bits::kIsTcl) != 0);
    h.wreg(reg::kIs, bits::kIsHac | bits::kIsTcl);
    CHECK(h.rreg(reg::kIs) == 0);
    h.wreg(reg::kCtl, 0);
    CHECK(h.rreg(reg::kCtl) == 0);
}

TEST_CASE("cqhci write and read without crypto go to the eMMC's sectors", "[device][cqhci]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    h.enable(false);
    const auto data = test::pattern_bytes(8 * 512, 7);
    REQUIRE(h.write(0, 100, data));
    CHECK(r.medium(100 * 512, data.size()) == data);
    CHECK(r.medium(99 * 512, 512) == std::vector<std::uint8_t>(512, 0));
    const auto back = h.read(3, 100, 8);
    REQUIRE(back);
    CHECK(*back == data);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kIs) == 0);
}

TEST_CASE("cqhci completion raises SDHCI NORINTSTS bit 14 while CQIS & CQISGE", "[device][cqhci]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    h.enable(false);
    const auto data = test::pattern_bytes(512, 8);
    h.put_data(1, data);
    h.prepare(task(1, true, 0, 1));
    h.ring(1u << 1);
    REQUIRE(h.wait_tcn(1u << 1) == (1u << 1));
    CHECK((h.rreg(reg::kIs) & bits::kIsTcc) != 0);
    CHECK((h.rsdhci(cqhci::sdhci::kNorIntSts) & cqhci::sdhci::kNisCqe) != 0);
    // a W1C of bit 14 alone does not drop it while the CQHCI still asserts it
    h.wsdhci(cqhci::sdhci::kNorIntSts, cqhci::sdhci::kNisCqe);
    CHECK((h.rsdhci(cqhci::sdhci::kNorIntSts) & cqhci::sdhci::kNisCqe) != 0);
    h.ack(1u << 1);
    CHECK(h.rreg(reg::kTcn) == 0);
    CHECK((h.rsdhci(cqhci::sdhci::kNorIntSts) & cqhci::sdhci::kNisCqe) == 0);
}

TEST_CASE("cqhci runs 31 tasks from one doorbell write (queue depth > 1) and a DCMD flush",
          "[device][cqhci]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    h.enable(false);
    std::uint32_t mask = 0;
    std::vector<std::vector<std::uint8_t>> data;
    for (unsigned tag = 0; tag < 31; ++tag) {
        data.push_back(test::pattern_bytes(16 * 512, 1000 + tag));
        h.put_data(tag, data.back());
        // 3 KiB transfer descriptors: several per task, not aligned to sectors
        h.prepare(task(tag, true, tag * 16, 16, {}, 3072));
        mask |= 1u << tag;
    }
    h.ring(mask);
    REQUIRE(h.wait_tcn(mask) == mask);
    h.ack(mask);
    for (unsigned tag = 0; tag < 31; ++tag) {
        CHECK(r.medium(std::uint64_t{tag} * 16 * 512, 16 * 512) == data[tag]);
    }
    h.prepare_dcmd_flush();
    h.ring(1u << cqhci::kDcmdSlot);
    CHECK(h.wait_tcn(1u << cqhci::kDcmdSlot) == (1u << cqhci::kDcmdSlot));
    CHECK(h.rreg(reg::kCrdct) == 0x900u);
    h.ack(1u << cqhci::kDcmdSlot);

    mask = 0;
    for (unsigned tag = 0; tag < 31; ++tag) {
        r.machine().memset(h.data_addr(tag), 16 * 512, 0);
        h.prepare(task(tag, false, (30 - tag) * 16, 16));
        mask |= 1u << tag;
    }
    h.ring(mask);
    REQUIRE(h.wait_tcn(mask) == mask);
    for (unsigned tag = 0; tag < 31; ++tag) {
        CHECK(h.get_data(tag, 16 * 512) == data[30 - tag]);
    }
}

TEST_CASE("cqhci crypto: CE writes store the model's AES-256-XTS ciphertext, CE reads decrypt",
          "[device][cqhci][crypto]") {
    const std::uint32_t du = GENERATE(512u, 4096u);
    const std::uint32_t dun = GENERATE(0u, 77u, 0xfffffffeu);
    INFO("data unit " << du << ", DUN " << dun);
    EmmcRig r(cq_options(true));
    auto& h = r.host();
    h.enable(true);
    const auto key = cryptokey(du ^ dun);
    h.program_keyslot(5, key, du);
    const auto plain = test::pattern_bytes(16 * 512, 42);
    const Crypto ce{true, 5, dun};
    REQUIRE(h.write(2, 64, plain, ce));
    const auto expect = model_encrypt(key, dun, du, plain);
    CHECK(r.medium(64 * 512, plain.size()) == expect);
    // the guest's buffer still holds the plaintext
    CHECK(h.get_data(2, plain.size()) == plain);
    const auto dec = h.read(7, 64, 16, ce);
    REQUIRE(dec);
    CHECK(*dec == plain);
    const auto raw = h.read(8, 64, 16);
    REQUIRE(raw);
    CHECK(*raw == expect);
    // a plaintext write next to it is not encrypted
    REQUIRE(h.write(9, 96, plain));
    CHECK(r.medium(96 * 512, plain.size()) == plain);
}

TEST_CASE("cqhci crypto: bad CCI, a disabled slot, CGE off and misalignment set ICCE and TDPE",
          "[device][cqhci][crypto][errors]") {
    const int which = GENERATE(0, 1, 2, 3);
    EmmcRig r(cq_options(true, "crypto-keyslots=8"));
    auto& h = r.host();
    const auto key = cryptokey(9);
    Crypto ce{true, 1, 3};
    std::uint16_t blocks = 8;
    switch (which) {
    case 0: // CCI beyond the 8 keyslots
        h.enable(true);
        h.program_keyslot(1, key, 512);
        ce.cci = 8;
        break;
    case 1: // slot never programmed / evicted
        h.enable(true);
        h.program_keyslot(1, key, 512);
        h.evict_keyslot(1);
        break;
    case 2: // crypto general enable off
        h.enable(false);
        h.program_keyslot(1, key, 512);
        break;
    default: // 4 KiB data unit, 1 KiB request
        h.enable(true);
        h.program_keyslot(1, key, 4096);
        blocks = 2;
        break;
    }
    INFO("case " << which);
    h.put_data(4, test::pattern_bytes(blocks * 512u, 1));
    h.prepare(task(4, true, 0, blocks, ce));
    h.ring(1u << 4);
    CHECK(h.wait_tcn(1u << 4) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsIcce) != 0);
    CHECK(h.rreg(reg::kTdpe) == (1u << 4));
    CHECK(h.rreg(reg::kTdbr) == (1u << 4)); // not executed, still owned by the CQE
    CHECK(r.medium(0, blocks * 512u) == std::vector<std::uint8_t>(blocks * 512u, 0));
    // Linux's recovery: halt, clear all tasks; the tag is free again
    h.wreg(reg::kIste, bits::kIsHac | bits::kIsTcl | bits::kIsTcc | bits::kIsIcce);
    h.wreg(reg::kCtl, bits::kCtlHalt);
    h.wreg(reg::kCtl, bits::kCtlHalt | bits::kCtlClearAll);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kTdpe) == 0);
    h.wreg(reg::kIs, 0x3f);
    h.wreg(reg::kCtl, 0);
    REQUIRE(h.write(4, 0, test::pattern_bytes(1024, 2)));
}

TEST_CASE("cqhci crypto: an injected fault sets GCE and TERRI for the task",
          "[device][cqhci][crypto][errors]") {
    EmmcRig r(cq_options(true));
    auto& h = r.host();
    h.enable(true);
    const auto key = cryptokey(11);
    h.program_keyslot(0, key, 512);
    r.machine().qom_set("/machine/peripheral/sd0", "crypto-fault-count", 1);
    h.put_data(6, test::pattern_bytes(4096, 3));
    h.prepare(task(6, true, 8, 8, Crypto{true, 0, 1}));
    h.ring(1u << 6);
    CHECK(h.wait_tcn(1u << 6) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsGce) != 0);
    const std::uint32_t terri = h.rreg(reg::kTerri);
    CHECK((terri & bits::kTerriDValid) != 0);
    CHECK(((terri >> 24) & 0x1f) == 6u);  // task
    CHECK(((terri >> 16) & 0x3f) == 47u); // CMD47 (write)
    CHECK(r.medium(8 * 512, 4096) == std::vector<std::uint8_t>(4096, 0));
    const auto state = r.machine().qom_get("/machine/peripheral/sd0", "crypto-state");
    INFO(state.dump());
    CHECK(state.is_object());
}

TEST_CASE("cqhci crypto: the event log records programs and crypto I/O with the frontend name",
          "[device][cqhci][crypto]") {
    EmmcRig r(cq_options(true, {}, true));
    auto& h = r.host();
    h.enable(true);
    h.program_keyslot(2, cryptokey(12), 512);
    REQUIRE(h.write(0, 0, test::pattern_bytes(1024, 4), Crypto{true, 2, 9}));
    r.machine().shutdown();
    namespace events = icemu::models::events;
    bool realize = false, io = false;
    for (const auto& e : events::read_log_file(r.log_path().string())) {
        if (const auto* x = std::get_if<events::Realize>(&e.body)) {
            realize = x->frontend == "cqhci";
        }
        if (const auto* x = std::get_if<events::Io>(&e.body)) {
            io = x->slot == 2 && x->dun == 9 && x->op == events::IoOp::write && x->queue == "cq:0";
        }
    }
    CHECK(realize);
    CHECK(io);
}

TEST_CASE("cqhci: tasks rung while halted wait for the unhalt; a doorbell while disabled is "
          "ignored; TCLR drops a failed task",
          "[device][cqhci]") {
    EmmcRig r(cq_options(true, "crypto-keyslots=4"));
    auto& h = r.host();
    // disabled: the doorbell is ignored
    h.wreg(reg::kTdbr, 1u);
    CHECK(h.rreg(reg::kTdbr) == 0);

    h.enable(true);
    h.wreg(reg::kIste, bits::kIsHac | bits::kIsTcc | bits::kIsTcl | bits::kIsIcce);
    h.wreg(reg::kCtl, bits::kCtlHalt);
    const auto data = test::pattern_bytes(2048, 21);
    h.put_data(3, data);
    h.prepare(task(3, true, 40, 4));
    h.ring(1u << 3);
    for (int i = 0; i < 20; ++i) {
        CHECK(h.rreg(reg::kTcn) == 0); // not fetched while halted
    }
    CHECK(h.rreg(reg::kTdbr) == (1u << 3));
    CHECK(r.medium(40 * 512, data.size()) == std::vector<std::uint8_t>(data.size(), 0));
    h.wreg(reg::kCtl, 0);
    REQUIRE(h.wait_tcn(1u << 3) == (1u << 3));
    CHECK(r.medium(40 * 512, data.size()) == data);
    h.ack(1u << 3);

    // a task refused with ICCE (slot 2 never programmed), then cleared with TCLR alone
    h.put_data(5, data);
    h.prepare(task(5, true, 80, 4, Crypto{true, 2, 0}));
    h.ring(1u << 5);
    CHECK(h.wait_tcn(1u << 5) == 0u);
    CHECK(h.rreg(reg::kTdpe) == (1u << 5));
    h.wreg(reg::kTclr, 1u << 5); // ignored: not halted
    CHECK(h.rreg(reg::kTdbr) == (1u << 5));
    h.wreg(reg::kCtl, bits::kCtlHalt);
    h.wreg(reg::kTclr, 1u << 5);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kTdpe) == 0);
    CHECK(h.rreg(reg::kTclr) == 0);
    h.wreg(reg::kIs, 0x3f);
    h.wreg(reg::kCtl, 0);

    // CFG.ENABLE 1 -> 0 keeps the keyslots (Linux reprograms only on reset)
    h.program_keyslot(1, cryptokey(22), 512);
    h.wreg(reg::kCfg, h.rreg(reg::kCfg) & ~bits::kCfgEnable);
    h.enable(true);
    REQUIRE(h.write(6, 120, data, Crypto{true, 1, 5}));
    CHECK(r.medium(120 * 512, data.size()) == model_encrypt(cryptokey(22), 5, 512, data));
}
