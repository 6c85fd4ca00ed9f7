// Hardware-wrapped keys on the eMMC (sdhci-pci,cqhci=on,crypto=on,crypto-wrapped-keys=on;
// docs/device.md "Hardware-wrapped keys on the eMMC"): the engine's key manager at CQHCI 0xC0,
// PROGRAM into a CQHCI keyslot used by CE tasks, every refusal, which resets keep which blobs,
// raw and wrapped keys side by side or wrapped only, one key manager shared with a UFS
// controller, and what never leaves the device.
//
// Oracles: the software secret and the inline encryption key are the models' hardware KDF
// (models/hw_wrapped.hpp), the ciphertext on the eMMC is the models' AES-XTS under that key,
// fingerprints are the models' key_fingerprint; the blob format is the documented one.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "device/test_cqhci_rig.hpp"
#include "device/wrapped_common.hpp"
#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/xts.hpp"
#include "ufs/keymanager.hpp"

using namespace icemu;
using namespace icemu::cqhci_test;
using namespace icemu::test::wrapped;
using cqhci::Crypto;
using ufs::km::KeyManager;
using ufs::km::Op;
namespace reg = cqhci::reg;
namespace bits = cqhci::bits;
namespace hw = icemu::models::hw_wrapped;

namespace {

constexpr const char* kSd = "/machine/peripheral/sd0";
// sdhci-pci with the eMMC, 4 keyslots, an AES-256-XTS and an AES-128-XTS capability and the key
// manager.
EmmcOptions wrapped_options(std::string extra = "", bool log = false) {
    std::string props = "crypto-keyslots=4,crypto-caps=aes-xts-256:0x0f/aes-xts-128:0x0f,"
                        "crypto-wrapped-keys=on";
    if (!extra.empty()) {
        props += "," + extra;
    }
    return cq_options(true, props, log);
}

EmmcOptions with_secret(EmmcOptions o, const char* b64) {
    o.objects.push_back(std::string("secret,id=ltk,format=base64,data=") + b64);
    o.props += ",crypto-wrapping-key=ltk";
    return o;
}

// The key manager's registers of the rig's CQHCI: 0xC0 of the CQHCI block (BAR0 + 0x200).
std::uint64_t km_base(cqhci::CqhciHost& h) {
    return h.bar_addr() + cqhci::kCqhciOffset;
}

struct WrappedEmmc {
    EmmcRig rig;
    KeyManager km;
    explicit WrappedEmmc(const EmmcOptions& o, bool enable = true)
        : rig(o), km(rig.machine(), km_base(rig.host()), kBuffer) {
        if (enable) {
            rig.host().enable(true);
        }
    }
    nlohmann::json state() { return rig.machine().qom_get(kSd, "crypto-state"); }
};

// A CE task on `tag` that the engine must refuse: IS.ICCE and the tag's TDPE bit, nothing
// written; then Linux's recovery (halt, clear all) frees the tag again.
void expect_icce(EmmcRig& r, unsigned tag, std::uint32_t lba, Crypto ce) {
    auto& h = r.host();
    const auto before = r.medium(std::uint64_t{lba} * 512, 4096);
    h.put_data(tag, test::pattern_bytes(4096, tag));
    h.prepare(task(tag, true, lba, 8, ce));
    h.ring(1u << tag);
    CHECK(h.wait_tcn(1u << tag) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsIcce) != 0);
    CHECK(h.rreg(reg::kTdpe) == (1u << tag));
    CHECK(r.medium(std::uint64_t{lba} * 512, 4096) == before);
    h.wreg(reg::kIste, bits::kIsHac | bits::kIsTcl | bits::kIsTcc | bits::kIsIcce);
    h.wreg(reg::kCtl, bits::kCtlHalt);
    h.wreg(reg::kCtl, bits::kCtlHalt | bits::kCtlClearAll);
    h.wreg(reg::kIs, 0x3f);
    h.wreg(reg::kCtl, 0);
    REQUIRE(h.rreg(reg::kTdbr) == 0u);
}

// x-CRYPTOCFG dword `dw` of `slot` (CQHCI offset).
std::uint32_t cfg_dword(cqhci::CqhciHost& h, unsigned slot, unsigned dw) {
    return h.rreg(h.cfg_offset(slot) + 4 * dw);
}

} // namespace

TEST_CASE("cqhci: the key manager is at CQHCI 0xC0 only with crypto-wrapped-keys=on",
          "[device][cqhci][wrapped][registers]") {
    SECTION("wrapped keys on, raw keys too") {
        WrappedEmmc w(wrapped_options(), false);
        CHECK(w.km.kmid() == ufs::km::kId);
        const auto cap = w.km.kmcap();
        CHECK((cap & 0xff) == 1u);          // VERSION
        CHECK(((cap >> 8) & 1) == 1u);      // RAW
        CHECK(((cap >> 16) & 0xff) == 64u); // BLOBSZ
        // the CQHCI around it is unchanged: CCAP, capabilities, the BAR
        auto& h = w.rig.host();
        CHECK((h.rreg(reg::kCap) & bits::kCapCs) != 0u);
        CHECK(h.keyslots() == 4u);
        CHECK(h.cfg_offset(0) == 0x200u);
        CHECK(h.bar_size() == 0x800u); // pow2ceil(0x200 + 0x200 + 4 * 0x80)
        CHECK(h.rreg(reg::kCryptoCap0) == 0x00030f00u);
        // nothing of it in the SDHCI's half of the BAR
        CHECK(h.rsdhci(ufs::km::kKmid) != ufs::km::kId);
    }
    SECTION("wrapped only") {
        WrappedEmmc w(wrapped_options("crypto-raw-keys=off"), false);
        CHECK(w.km.kmid() == ufs::km::kId);
        CHECK(((w.km.kmcap() >> 8) & 1) == 0u);
    }
    SECTION("crypto=on without wrapped keys: CQHCI 0xC0-0xDF read 0 and ignore writes") {
        EmmcRig r(cq_options(true));
        KeyManager km(r.machine(), km_base(r.host()), kBuffer);
        for (std::uint32_t off = 0xc0; off < 0xe0; off += 4) {
            INFO("offset 0x" << std::hex << off);
            CHECK(r.host().rreg(off) == 0u);
        }
        CHECK(km.import_key(raw_key(1)).kmsts == 0u);
    }
    SECTION("byte and word accesses are refused, never applied to part of a register") {
        WrappedEmmc w(wrapped_options(), false);
        auto& m = w.rig.machine();
        const auto base = km_base(w.rig.host());
        CHECK(m.readb(base + ufs::km::kKmid) == 0u);
        CHECK(m.readw(base + ufs::km::kKmid) == 0u);
        m.writeb(base + ufs::km::kKmcfg, 0x08);
        m.writew(base + ufs::km::kKmba, 0x1234);
        CHECK(w.km.rreg(ufs::km::kKmcfg) == 0u);
        CHECK(w.km.rreg(ufs::km::kKmba) == static_cast<std::uint32_t>(kBuffer));
    }
}

TEST_CASE("cqhci: PROGRAM arms a CQHCI keyslot with the hardware KDF's inline key, CE tasks use "
          "it, the log has fingerprints only",
          "[device][cqhci][wrapped][commands][data]") {
    const std::uint32_t du = GENERATE(512u, 4096u);
    INFO("data unit " << du);
    WrappedEmmc w(wrapped_options("", true));
    auto& h = w.rig.host();
    const auto raw = raw_key(2);
    const auto blobs = wrap_key(w.km, raw);
    CHECK(blobs.lt.size() == ufs::km::kBlobLen);
    CHECK(blobs.lt[0] == 0x49);
    CHECK(blobs.lt[2] == 1);  // long-term
    CHECK(blobs.eph[2] == 2); // ephemeral
    const auto secret = w.km.derive(blobs.eph);
    REQUIRE(status_of(secret) == "ok");
    CHECK(secret.out == hw::sw_secret(raw));

    const auto p = w.km.program(blobs.eph, 3, du);
    REQUIRE(status_of(p) == "ok");
    CHECK(p.out.empty());
    // dword 16 reads CFGE=1 with KMCFG's fields; the key dwords read 0
    CHECK(cfg_dword(h, 3, 16) == (0x80000000u | (du / 512)));
    for (unsigned dw = 0; dw < 16; ++dw) {
        CHECK(cfg_dword(h, 3, dw) == 0u);
    }

    const auto inline_key = hw::inline_encryption_key(raw);
    const auto plain = test::pattern_bytes(3 * 4096, 5);
    const std::uint32_t dun = 0x12345678;
    REQUIRE(h.write(1, 64, plain, Crypto{true, 3, dun}));
    CHECK(w.rig.medium(64 * 512, plain.size()) == models::xts_encrypt(inline_key, dun, du, plain));
    const auto back = h.read(2, 64, 24, Crypto{true, 3, dun});
    REQUIRE(back);
    CHECK(*back == plain);

    const auto state = w.state();
    CHECK(state["slots"][3]["wrapped"] == true);
    CHECK(state["slots"][3]["key_fp"] == models::key_fingerprint(inline_key));
    CHECK(state["slots"][0]["wrapped"] == false);
    CHECK(state["counters"]["km_commands"] == 4);
    CHECK(state["counters"]["km_errors"] == 0);

    const auto log = w.rig.log_path();
    const auto realize = log_lines(log, "realize");
    REQUIRE(realize.size() == 1);
    CHECK(realize[0]["frontend"] == "cqhci");
    CHECK(realize[0]["wrapped_keys"] == true);
    CHECK(realize[0]["raw_keys"] == true);
    const auto kms = log_lines(log, "km");
    REQUIRE(kms.size() == 4);
    CHECK(kms[0]["op"] == "import");
    CHECK(kms[1]["op"] == "prepare");
    CHECK(kms[2]["op"] == "derive");
    CHECK(kms[3]["op"] == "program");
    CHECK(kms[3]["slot"] == 3);
    for (const auto& k : kms) {
        CHECK(k["ok"] == true);
        CHECK(k["master_fp"] == models::key_fingerprint(raw));
    }
    // the km PROGRAM, then the slot's wrapped program event right after it
    const auto all = log_lines(log, nullptr);
    const auto km_prog = std::find_if(all.begin(), all.end(), [](const nlohmann::json& j) {
        return j["ev"] == "km" && j["op"] == "program";
    });
    REQUIRE(km_prog != all.end());
    REQUIRE(km_prog + 1 != all.end());
    const auto& prog = *(km_prog + 1);
    CHECK(prog["ev"] == "program");
    CHECK(prog["slot"] == 3);
    CHECK(prog["wrapped"] == true);
    CHECK(prog["ok"] == true);
    CHECK(prog["dusize"] == du);
    CHECK(prog["key_fp"] == models::key_fingerprint(inline_key));
    const auto ios = log_lines(log, "io");
    REQUIRE(ios.size() == 2);
    CHECK(ios[0]["key_fp"] == models::key_fingerprint(inline_key));
    CHECK(ios[0]["opcode"] == 47);
    CHECK(ios[1]["opcode"] == 46);

    // Linux's eviction (cqhci_crypto_clear_keyslot: the whole configuration written with
    // zeroes) evicts a wrapped slot like a raw one
    h.evict_keyslot(3);
    CHECK(log_lines(log, "evict").back()["slot"] == 3);
    CHECK(w.state()["slots"][3]["wrapped"] == false);
    expect_icce(w.rig, 4, 64, Crypto{true, 3, dun});
}

TEST_CASE("cqhci: GENERATE makes a key only the device knows; two keys in two slots",
          "[device][cqhci][wrapped][commands][data]") {
    WrappedEmmc w(wrapped_options());
    auto& h = w.rig.host();
    const auto a = w.km.generate();
    const auto b = w.km.generate();
    REQUIRE(status_of(a) == "ok");
    REQUIRE(status_of(b) == "ok");
    CHECK(a.out != b.out);
    const auto eph_a = w.km.prepare(a.out);
    const auto eph_b = w.km.prepare(b.out);
    REQUIRE(status_of(eph_a) == "ok");
    REQUIRE(status_of(eph_b) == "ok");
    CHECK(w.km.derive(eph_a.out).out != w.km.derive(eph_b.out).out);
    REQUIRE(status_of(w.km.program(eph_a.out, 0, 4096)) == "ok");
    REQUIRE(status_of(w.km.program(eph_b.out, 1, 4096)) == "ok");
    const auto data = test::pattern_bytes(4096, 9);
    REQUIRE(h.write(0, 0, data, Crypto{true, 0, 7}));
    REQUIRE(h.write(1, 8, data, Crypto{true, 1, 7}));
    CHECK(w.rig.medium(0, 4096) != data);
    CHECK(w.rig.medium(0, 4096) != w.rig.medium(8 * 512, 4096)); // two keys
    CHECK(*h.read(2, 0, 8, Crypto{true, 0, 7}) == data);
    CHECK(*h.read(3, 8, 8, Crypto{true, 1, 7}) == data);
    CHECK(*h.read(4, 8, 8, Crypto{true, 0, 7}) != data); // the other key
}

TEST_CASE("cqhci: tampered, truncated, wrong-kind and out-of-range commands are refused with "
          "their status and change nothing",
          "[device][cqhci][wrapped][errors]") {
    WrappedEmmc w(wrapped_options("", true));
    auto& h = w.rig.host();
    const auto raw = raw_key(4);
    const auto blobs = wrap_key(w.km, raw);
    const auto& lt = blobs.lt;
    const auto& eph = blobs.eph;

    // a raw key in slot 1 and a wrapped key in slot 2, to see that refusals leave them alone
    const auto raw_xts = cryptokey(41);
    h.program_keyslot(1, raw_xts, 4096);
    REQUIRE(status_of(w.km.program(eph, 2, 4096)) == "ok");
    const auto data = test::pattern_bytes(4096, 12);
    REQUIRE(h.write(0, 72, data, Crypto{true, 1, 3}));
    REQUIRE(h.write(1, 80, data, Crypto{true, 2, 3}));
    const auto before = w.state()["slots"];

    std::vector<Refusal> cases;
    cases.push_back({"opcode 0", w.km.run_raw(0, {}, 0, 0, 0), "opcode"});
    cases.push_back({"opcode 9", w.km.run_raw(9, eph, 0, 0, 64), "opcode"});
    cases.push_back({"IMPORT of 16 bytes", w.km.run(Op::import_key, raw, 0, 0, 16), "length"});
    cases.push_back({"PREPARE of a truncated blob", w.km.run(Op::prepare, lt, 0, 0, 48), "length"});
    cases.push_back(
        {"PROGRAM of a truncated blob", w.km.run(Op::program, eph, 1, 8, 63), "length"});
    cases.push_back({"PROGRAM slot 4 of 4", w.km.program(eph, 4, 4096), "slot"});
    cases.push_back({"PROGRAM on the AES-128-XTS cap", w.km.program(eph, 1, 4096, 1), "config"});
    cases.push_back({"PROGRAM with DUSIZE 8192", w.km.program(eph, 1, 8192), "config"});
    cases.push_back({"PREPARE of an ephemeral blob", w.km.prepare(eph), "blob"});
    cases.push_back({"DERIVE of a long-term blob", w.km.derive(lt), "blob"});
    cases.push_back({"PROGRAM of a long-term blob", w.km.program(lt, 1, 4096), "blob"});
    auto zero_tag = eph;
    std::fill(zero_tag.begin() + 48, zero_tag.end(), 0);
    cases.push_back({"PROGRAM with a zeroed tag", w.km.program(zero_tag, 1, 4096), "blob"});
    check_refusals(cases);
    check_every_bit_authenticated(w.km, blobs, 1);
    // DMA: the controller's own BAR (its SDHCI registers, the CQHCI, the key manager itself)
    // and unassigned memory
    const std::vector<std::uint8_t> none;
    const std::array<std::uint64_t, 4> hostile = {h.bar_addr(), km_base(h), km_base(h) + 0xc0,
                                                  0xfff00000000ull};
    for (const std::uint64_t at : hostile) {
        INFO("buffer at 0x" << std::hex << at);
        w.km.set_buffer(at, false);
        CHECK(status_of(w.km.run(Op::derive, none, 0, 0, 64)) == "dma");
        CHECK(status_of(w.km.run(Op::program, none, 1, 8, 64)) == "dma");
    }
    CHECK(w.km.kmid() == ufs::km::kId); // still there
    CHECK(h.rreg(reg::kVer) == 0x0510u);
    w.km.set_buffer(kBuffer);

    // both slots as they were: same keys, same data
    CHECK(w.state()["slots"] == before);
    CHECK(*h.read(2, 72, 8, Crypto{true, 1, 3}) == data);
    CHECK(*h.read(3, 80, 8, Crypto{true, 2, 3}) == data);
    CHECK(w.rig.medium(72 * 512, 4096) == model_encrypt(raw_xts, 3, 4096, data));
    CHECK(w.rig.medium(80 * 512, 4096) ==
          models::xts_encrypt(hw::inline_encryption_key(raw), 3, 4096, data));

    // each refusal with an op name is a km event with its error and no fingerprint
    std::size_t refused = 0;
    for (const auto& k : log_lines(w.rig.log_path(), "km")) {
        if (k["ok"] == false) {
            ++refused;
            CHECK(k.contains("error"));
            CHECK(k["master_fp"] == "");
        }
    }
    CHECK(refused == (cases.size() - 2) + 3 * ufs::km::kBlobLen + 8);
    CHECK(w.state()["counters"]["km_errors"] == refused + 2);
}

TEST_CASE("cqhci: a blob of another QEMU is foreign unless it shares the wrapping key, whatever "
          "the front end",
          "[device][cqhci][wrapped][lifecycle]") {
    const auto raw = raw_key(7);
    std::vector<std::uint8_t> lt_emmc, lt_ufs;
    {
        WrappedEmmc w(with_secret(wrapped_options(), kLtSecretA), false);
        const auto r = w.km.import_key(raw);
        REQUIRE(status_of(r) == "ok");
        lt_emmc = r.out;
    }
    {
        test::ControllerSpec s;
        s.props = "crypto=on,crypto-wrapped-keys=on,crypto-wrapping-key=ltk";
        s.objects = {std::string("secret,id=ltk,format=base64,data=") + kLtSecretA};
        test::Rig rig(s, false);
        KeyManager km(rig.host(), kBuffer);
        const auto r = km.import_key(raw);
        REQUIRE(status_of(r) == "ok");
        lt_ufs = r.out;
    }
    SECTION("the same wrapping key: both long-term blobs work on the eMMC") {
        WrappedEmmc w(with_secret(wrapped_options(), kLtSecretA));
        for (const auto* lt : {&lt_emmc, &lt_ufs}) {
            const auto eph = w.km.prepare(*lt);
            REQUIRE(status_of(eph) == "ok");
            CHECK(w.km.derive(eph.out).out == hw::sw_secret(raw));
        }
    }
    SECTION("another wrapping key: refused") {
        WrappedEmmc w(with_secret(wrapped_options(), kLtSecretB));
        CHECK(status_of(w.km.prepare(lt_emmc)) == "blob");
        CHECK(status_of(w.km.prepare(lt_ufs)) == "blob");
    }
    SECTION("no wrapping key (a random one): refused") {
        WrappedEmmc w(wrapped_options());
        CHECK(status_of(w.km.prepare(lt_emmc)) == "blob");
    }
}

TEST_CASE("cqhci: crypto-raw-keys=off refuses raw keys in x-CRYPTOCFG and keeps wrapped ones; "
          "by default both work side by side",
          "[device][cqhci][wrapped][errors]") {
    const auto raw_xts = cryptokey(51);
    const auto data = test::pattern_bytes(4096, 14);
    SECTION("wrapped only") {
        WrappedEmmc w(wrapped_options("crypto-raw-keys=off", true));
        auto& h = w.rig.host();
        h.program_keyslot(0, raw_xts, 4096);
        const auto progs = log_lines(w.rig.log_path(), "program");
        REQUIRE(!progs.empty());
        CHECK(progs.back()["ok"] == false);
        CHECK(progs.back()["error"] == "key-type");
        CHECK(w.state()["slots"][0]["valid"] == false);
        expect_icce(w.rig, 5, 0, Crypto{true, 0, 1});

        REQUIRE(status_of(w.km.program(wrap_key(w.km, raw_key(5)).eph, 0, 4096)) == "ok");
        REQUIRE(h.write(0, 0, data, Crypto{true, 0, 1}));
        CHECK(w.rig.medium(0, 4096) ==
              models::xts_encrypt(hw::inline_encryption_key(raw_key(5)), 1, 4096, data));
    }
    SECTION("raw keys too (the default)") {
        WrappedEmmc w(wrapped_options());
        auto& h = w.rig.host();
        h.program_keyslot(0, raw_xts, 4096);
        REQUIRE(status_of(w.km.program(wrap_key(w.km, raw_key(5)).eph, 1, 4096)) == "ok");
        REQUIRE(h.write(0, 0, data, Crypto{true, 0, 1}));
        REQUIRE(h.write(1, 8, data, Crypto{true, 1, 1}));
        CHECK(w.rig.medium(0, 4096) == model_encrypt(raw_xts, 1, 4096, data));
        CHECK(w.rig.medium(8 * 512, 4096) ==
              models::xts_encrypt(hw::inline_encryption_key(raw_key(5)), 1, 4096, data));
        const auto slots = w.state()["slots"];
        CHECK(slots[0]["wrapped"] == false);
        CHECK(slots[1]["wrapped"] == true);
    }
}

TEST_CASE("cqhci: Software Reset For All wipes the keyslots and keeps ephemeral blobs valid; a "
          "device reset draws a new ephemeral key; long-term blobs survive both",
          "[device][cqhci][wrapped][lifecycle]") {
    WrappedEmmc w(wrapped_options("", true));
    auto& m = w.rig.machine();
    const auto raw = raw_key(6);
    const auto blobs = wrap_key(w.km, raw);
    const auto inline_key = hw::inline_encryption_key(raw);
    const auto data = test::pattern_bytes(4096, 61);
    {
        auto& h = w.rig.host();
        REQUIRE(status_of(w.km.program(blobs.eph, 0, 4096)) == "ok");
        // CFG.ENABLE 1 -> 0 -> 1 (cqhci_disable, recovery) keeps the wrapped slot
        h.wreg(reg::kCfg, h.rreg(reg::kCfg) & ~bits::kCfgEnable);
        h.enable(true);
        REQUIRE(h.write(0, 0, data, Crypto{true, 0, 9}));
        CHECK(w.rig.medium(0, 4096) == models::xts_encrypt(inline_key, 9, 4096, data));

        // SDHCI Software Reset For All (Linux's card reset and power cycle): the CQHCI and its
        // keyslots are reset, so are the key manager's registers; Linux then reprograms from
        // the ephemeral blobs it holds, which must still be good
        h.sdhci_reset(cqhci::sdhci::kResetAll);
        CHECK(w.state()["slots"][0]["armed"] == false);
        CHECK(log_lines(w.rig.log_path(), "wipe").back()["reason"] == "reset");
        CHECK(w.km.rreg(ufs::km::kKmba) == 0u);
        h.enable(true);
        expect_icce(w.rig, 1, 8, Crypto{true, 0, 9});
        w.km.set_buffer(kBuffer);
        REQUIRE(status_of(w.km.program(blobs.eph, 0, 4096)) == "ok");
        CHECK(w.km.derive(blobs.eph).out == hw::sw_secret(raw));
        REQUIRE(h.write(2, 8, data, Crypto{true, 0, 9}));
        CHECK(w.rig.medium(8 * 512, 4096) == models::xts_encrypt(inline_key, 9, 4096, data));
    }

    // system_reset: a device reset; the old ephemeral blob is refused, the long-term one
    // prepares a new one of the same master key
    m.qmp("system_reset");
    cqhci::CqhciHost h2(m); // maps BAR0 at the same address again
    REQUIRE(h2.bar_addr() == w.rig.host().bar_addr());
    CHECK(w.km.kmid() == ufs::km::kId);
    CHECK(w.km.rreg(ufs::km::kKmba) == 0u);
    w.km.set_buffer(kBuffer);
    CHECK(status_of(w.km.derive(blobs.eph)) == "blob");
    CHECK(status_of(w.km.program(blobs.eph, 0, 4096)) == "blob");
    CHECK(w.state()["slots"][0]["armed"] == false);
    const auto eph2 = w.km.prepare(blobs.lt);
    REQUIRE(status_of(eph2) == "ok");
    CHECK(eph2.out != blobs.eph);
    CHECK(w.km.derive(eph2.out).out == hw::sw_secret(raw));
    h2.enable(true);
    REQUIRE(status_of(w.km.program(eph2.out, 0, 4096)) == "ok");
    CHECK(*h2.read(3, 8, 8, Crypto{true, 0, 9}) == data);
}

TEST_CASE("cqhci: a UFS controller and the eMMC share the machine's key manager (dm over both)",
          "[device][cqhci][wrapped][lifecycle]") {
    // Linux's dm passthrough runs import / prepare / derive on its first underlying device and
    // programs the ephemeral blob into every device's keyslots
    auto o = wrapped_options();
    o.devices.push_back("ufs,id=ufs0,crypto=on,crypto-wrapped-keys=on");
    WrappedEmmc w(o);
    auto& m = w.rig.machine();
    ufs::PciConfig pci(m);
    const auto fns = pci.find(ufs::kRedHatVendor, ufs::kUfsDevice);
    REQUIRE(fns.size() == 1);
    const auto bar = pci.map_bar(fns[0], 0, 0xe1000000ull);
    pci.enable(fns[0]);
    KeyManager ufs_km(m, bar.addr, kBuffer + 0x1000);
    REQUIRE(ufs_km.kmid() == ufs::km::kId);

    const auto raw = raw_key(9);
    const auto blobs = wrap_key(ufs_km, raw);
    CHECK(w.km.derive(blobs.eph).out == hw::sw_secret(raw));
    const auto eph_emmc = w.km.prepare(blobs.lt);
    REQUIRE(status_of(eph_emmc) == "ok");
    CHECK(ufs_km.derive(eph_emmc.out).out == hw::sw_secret(raw));
    REQUIRE(status_of(w.km.program(blobs.eph, 2, 4096)) == "ok");
    const auto data = test::pattern_bytes(8192, 17);
    REQUIRE(w.rig.host().write(0, 16, data, Crypto{true, 2, 100}));
    CHECK(w.rig.medium(16 * 512, data.size()) ==
          models::xts_encrypt(hw::inline_encryption_key(raw), 100, 4096, data));
}

TEST_CASE("cqhci: bad key manager properties fail -device with one clear message",
          "[device][cqhci][wrapped][properties]") {
    struct Case {
        bool cqhci;
        bool crypto;
        std::string props;
        std::vector<std::string> objects;
        const char* message;
    };
    const auto c = GENERATE(
        Case{true, false, "crypto-wrapped-keys=on", {}, "crypto-wrapped-keys=on needs crypto=on"},
        Case{false, false, "crypto-wrapped-keys=on", {}, "crypto-wrapped-keys=on needs cqhci=on"},
        Case{true, true, "crypto-raw-keys=off", {}, "crypto-raw-keys=off is only for"},
        Case{true,
             true,
             "crypto-wrapping-key=k",
             {"secret,id=k,data=x"},
             "crypto-wrapping-key is only for"},
        Case{true, true, "crypto-wrapped-keys=on,crypto-wrapping-key=nosuch", {}, "nosuch"},
        Case{true,
             true,
             "crypto-wrapped-keys=on,crypto-wrapping-key=k",
             {"secret,id=k,data=0123456789abcdef"},
             "must hold 32 bytes, it holds 16"});
    INFO(c.props << " cqhci=" << c.cqhci << " crypto=" << c.crypto);
    EmmcOptions o = cq_options(c.crypto, c.props);
    o.cqhci = c.cqhci;
    o.objects = c.objects;
    bool failed = false;
    try {
        EmmcRig r(o);
    } catch (const qtest::Error& e) {
        failed = true;
        CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring(c.message));
    }
    CHECK(failed);
}

TEST_CASE("cqhci: no master key, inline key, secret or blob in the trace, the log or QMP",
          "[device][cqhci][wrapped][security]") {
    auto o = wrapped_options("crypto-log-keys=off", true);
    o.trace = {"enable=cqhci_*", "enable=sdhci_*", "enable=sdcard_*", "enable=inline_crypto_*",
               "enable=pci_*"};
    WrappedEmmc w(o);
    auto& h = w.rig.host();
    const auto raw = raw_key(8);
    const auto blobs = wrap_key(w.km, raw);
    const auto secret = w.km.derive(blobs.eph);
    REQUIRE(status_of(secret) == "ok");
    REQUIRE(status_of(w.km.program(blobs.eph, 0, 4096)) == "ok");
    const auto data = test::pattern_bytes(4096, 15);
    REQUIRE(h.write(0, 0, data, Crypto{true, 0, 1}));
    REQUIRE(h.read(1, 0, 8, Crypto{true, 0, 1}));
    // a Software Reset For All and Linux's reprogram from the ephemeral blob
    h.sdhci_reset(cqhci::sdhci::kResetAll);
    w.km.set_buffer(kBuffer);
    REQUIRE(status_of(w.km.program(blobs.eph, 0, 4096)) == "ok");
    const auto gen = w.km.generate();
    REQUIRE(status_of(gen) == "ok");
    // refusals too
    auto bad = blobs.eph;
    bad[20] ^= 0x40;
    REQUIRE(status_of(w.km.program(bad, 1, 4096)) == "blob");
    REQUIRE(status_of(w.km.prepare(bad)) == "blob");
    const auto state = w.state().dump();
    w.rig.machine().shutdown();

    const auto trace = test::slurp(w.rig.trace_path());
    const auto log = test::slurp(w.rig.log_path());
    REQUIRE(trace.find("inline_crypto_km_command") != std::string::npos); // it traced
    REQUIRE(trace.find("cqhci_") != std::string::npos);
    REQUIRE(log.find("\"km\"") != std::string::npos);
    const auto inline_key = hw::inline_encryption_key(raw);
    const std::vector<std::pair<const char*, models::Bytes>> secrets = {
        {"master key", raw},
        {"inline key K1", {inline_key.begin(), inline_key.begin() + 32}},
        {"inline key K2", {inline_key.begin() + 32, inline_key.end()}},
        {"software secret", secret.out},
        {"long-term blob tail", {blobs.lt.begin() + 16, blobs.lt.end()}},
        {"ephemeral blob tail", {blobs.eph.begin() + 16, blobs.eph.end()}},
        {"tampered blob tail", {bad.begin() + 16, bad.end()}},
        {"generated blob tail", {gen.out.begin() + 16, gen.out.end()}},
    };
    const auto leaks =
        exposures(secrets, {{"trace", trace}, {"event log", log}, {"QMP crypto-state", state}});
    INFO(leaks.size() << " leak(s); first: " << (leaks.empty() ? "" : leaks.front()));
    CHECK(leaks.empty());
}
