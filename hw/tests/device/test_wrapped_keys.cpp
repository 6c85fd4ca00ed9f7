// Hardware-wrapped keys (crypto-wrapped-keys=on, docs/device.md "Hardware-wrapped keys"):
// every key manager command and every refusal, blob lifetimes across resets and QEMU
// processes, the keyslot a PROGRAM arms, and what never leaves the device.
//
// Oracles: the software secret and the inline encryption key are the models' hardware KDF
// (models/hw_wrapped.hpp: SP 800-108 counter mode over Crypto++'s AES-256-CMAC, checked
// against SP 800-38B and OpenSSL vectors), the ciphertext on the medium is the models'
// AES-XTS (IEEE 1619 vectors) under that key; fingerprints are the models' key_fingerprint.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "device/rig.hpp"
#include "device/wrapped_common.hpp"
#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/xts.hpp"
#include "ufs/keymanager.hpp"

using namespace icemu;
using namespace icemu::test::wrapped;
using ufs::km::KeyManager;
using ufs::km::Op;
using ufs::km::Status;
namespace hw = icemu::models::hw_wrapped;

namespace {

test::ControllerSpec wrapped_controller(std::string extra = "", bool log = false) {
    test::ControllerSpec s;
    s.props = "crypto=on,crypto-keyslots=4,crypto-caps=aes-xts-256:0x0f/aes-xts-128:0x0f,"
              "crypto-wrapped-keys=on";
    if (!extra.empty()) {
        s.props += "," + extra;
    }
    s.event_log = log;
    s.lus = {test::LuSpec{0, 1u << 20, 0}};
    return s;
}

test::ControllerSpec with_secret(test::ControllerSpec s, const char* b64) {
    s.objects.push_back(std::string("secret,id=ltk,format=base64,data=") + b64);
    s.props += ",crypto-wrapping-key=ltk";
    return s;
}

std::vector<nlohmann::json> log_lines(const test::Rig& rig, const char* ev) {
    return test::wrapped::log_lines(rig.log_path(0), ev);
}

// A rig with the key manager, the host up, and a client on kBuffer.
struct WrappedRig {
    test::Rig rig;
    KeyManager km;
    explicit WrappedRig(test::ControllerSpec s, bool enable = true)
        : rig(std::move(s), enable), km(rig.host(), kBuffer) {}
};

std::vector<std::uint8_t> ephemeral_of(KeyManager& km, std::span<const std::uint8_t> raw) {
    return wrap_key(km, raw).eph;
}

} // namespace

TEST_CASE("the key manager identifies itself only with crypto-wrapped-keys=on",
          "[device][wrapped][registers]") {
    SECTION("wrapped keys on, raw keys too") {
        WrappedRig w(wrapped_controller(), false);
        CHECK(w.km.kmid() == ufs::km::kId);
        const auto cap = w.km.kmcap();
        CHECK((cap & 0xff) == 1u);          // VERSION
        CHECK(((cap >> 8) & 1) == 1u);      // RAW
        CHECK(((cap >> 16) & 0xff) == 64u); // BLOBSZ
    }
    SECTION("wrapped only") {
        WrappedRig w(wrapped_controller("crypto-raw-keys=off"), false);
        CHECK(w.km.kmid() == ufs::km::kId);
        CHECK(((w.km.kmcap() >> 8) & 1) == 0u);
    }
    SECTION("crypto=on without wrapped keys: 0xC0-0xDF read 0 as upstream") {
        test::ControllerSpec s;
        s.props = "crypto=on";
        test::Rig rig(s, false);
        for (std::uint32_t off = 0xc0; off < 0xe0; off += 4) {
            INFO("offset 0x" << std::hex << off);
            CHECK(rig.host().rreg(off) == 0u);
        }
    }
    SECTION("byte and word accesses are refused, never applied to part of a register") {
        WrappedRig w(wrapped_controller(), false);
        auto& m = w.rig.machine();
        const auto bar = w.rig.host().bar_addr();
        CHECK(m.readb(bar + ufs::km::kKmid) == 0u);
        CHECK(m.readw(bar + ufs::km::kKmid) == 0u);
        m.writeb(bar + ufs::km::kKmcfg, 0x08);
        m.writew(bar + ufs::km::kKmba, 0x1234);
        CHECK(w.rig.host().rreg(ufs::km::kKmcfg) == 0u);
        CHECK(w.rig.host().rreg(ufs::km::kKmba) == static_cast<std::uint32_t>(kBuffer));
    }
}

TEST_CASE("IMPORT, PREPARE and DERIVE give blobs of the documented format and the standard "
          "software secret",
          "[device][wrapped][commands]") {
    WrappedRig w(wrapped_controller(), false);
    const auto raw = raw_key(1);

    const auto lt = w.km.import_key(raw);
    REQUIRE(status_of(lt) == "ok");
    REQUIRE(lt.out.size() == ufs::km::kBlobLen);
    CHECK(lt.out[0] == 0x49);
    CHECK(lt.out[1] == 1);
    CHECK(lt.out[2] == 1); // long-term
    CHECK(lt.out[3] == 0);
    // the raw key is not in the blob in the clear
    CHECK(std::search(lt.out.begin(), lt.out.end(), raw.begin(), raw.begin() + 8) == lt.out.end());

    // a second import of the same key: a new nonce, so another blob of the same key
    const auto lt2 = w.km.import_key(raw);
    REQUIRE(status_of(lt2) == "ok");
    CHECK(lt2.out != lt.out);

    const auto eph = w.km.prepare(lt.out);
    REQUIRE(status_of(eph) == "ok");
    REQUIRE(eph.out.size() == ufs::km::kBlobLen);
    CHECK(eph.out[2] == 2); // ephemeral
    const auto eph2 = w.km.prepare(lt2.out);
    REQUIRE(status_of(eph2) == "ok");

    const auto secret = w.km.derive(eph.out);
    REQUIRE(status_of(secret) == "ok");
    CHECK(secret.out == hw::sw_secret(raw));
    const auto secret2 = w.km.derive(eph2.out);
    REQUIRE(status_of(secret2) == "ok");
    CHECK(secret2.out == secret.out);
    // another key, another secret
    CHECK(w.km.derive(ephemeral_of(w.km, raw_key(2))).out != secret.out);
}

TEST_CASE("PROGRAM arms a keyslot with the inline encryption key derived from the master key",
          "[device][wrapped][commands][data]") {
    WrappedRig w(wrapped_controller("", true));
    auto& h = w.rig.host();
    const auto raw = raw_key(3);
    const auto eph = ephemeral_of(w.km, raw);

    const auto p = w.km.program(eph, 2, 4096);
    REQUIRE(status_of(p) == "ok");
    CHECK(p.out.empty());
    // dword 16 reads CFGE=1 with KMCFG's fields; key dwords read 0
    const std::uint32_t cfg16 = h.rreg(0x2000 + 2 * 0x80 + 16 * 4);
    CHECK(cfg16 == (0x80000000u | 0x08u));
    for (unsigned dw = 0; dw < 16; ++dw) {
        CHECK(h.rreg(0x2000 + 2 * 0x80 + 4 * dw) == 0u);
    }

    const auto inline_key = hw::inline_encryption_key(raw);
    const auto data = test::pattern_bytes(3 * 4096, 7);
    const std::uint64_t dun = 0x1122334455ull;
    const auto wc = h.write(0, 5, data, {true, 2, dun});
    REQUIRE(wc.ocs == ufs::ocs::kSuccess);
    CHECK(w.rig.medium(0, 0, 5 * 4096, data.size()) ==
          models::xts_encrypt(inline_key, dun, 4096, data));
    const auto rc = h.read(0, 5, 3, {true, 2, dun});
    REQUIRE(rc.ocs == ufs::ocs::kSuccess);
    CHECK(rc.in == data);

    const auto state = w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state");
    CHECK(state["slots"][2]["wrapped"] == true);
    CHECK(state["slots"][2]["key_fp"] == models::key_fingerprint(inline_key));
    CHECK(state["slots"][1]["wrapped"] == false);
    CHECK(state["counters"]["km_commands"] == 3);
    CHECK(state["counters"]["km_errors"] == 0);

    // the event log: km events with the master key's fingerprint, then the slot's program
    const auto kms = log_lines(w.rig, "km");
    REQUIRE(kms.size() == 3);
    CHECK(kms[0]["op"] == "import");
    CHECK(kms[1]["op"] == "prepare");
    CHECK(kms[2]["op"] == "program");
    CHECK(kms[2]["slot"] == 2);
    for (const auto& k : kms) {
        CHECK(k["ok"] == true);
        CHECK(k["master_fp"] == models::key_fingerprint(raw));
    }
    const auto progs = log_lines(w.rig, "program");
    REQUIRE(!progs.empty());
    CHECK(progs.back()["slot"] == 2);
    CHECK(progs.back()["wrapped"] == true);
    CHECK(progs.back()["key_fp"] == models::key_fingerprint(inline_key));
    CHECK(progs.back()["dusize"] == 4096);
    // the km command comes first, the slot's program event right after it
    const auto all = log_lines(w.rig, nullptr);
    const auto km_prog = std::find_if(all.begin(), all.end(), [](const nlohmann::json& j) {
        return j["ev"] == "km" && j["op"] == "program";
    });
    REQUIRE(km_prog != all.end());
    REQUIRE(km_prog + 1 != all.end());
    CHECK((*(km_prog + 1))["ev"] == "program");
    CHECK((*(km_prog + 1))["slot"] == 2);
    const auto realize = log_lines(w.rig, "realize");
    REQUIRE(realize.size() == 1);
    CHECK(realize[0]["wrapped_keys"] == true);
    CHECK(realize[0]["raw_keys"] == true);

    // Linux's eviction (dword 16 = 0, then 18 zero writes) evicts a wrapped slot like a raw
    // one: a disarm, then the evict
    const auto caps = ufs::read_crypto_capabilities(h);
    ufs::evict_keyslot(h, caps, 2);
    CHECK(log_lines(w.rig, "disarm").back()["slot"] == 2);
    CHECK(log_lines(w.rig, "evict").back()["slot"] == 2);
    CHECK(h.read(0, 5, 1, {true, 2, dun}).ocs == ufs::ocs::kInvalidCryptoConfig);
    CHECK(w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state")["slots"][2]["wrapped"] ==
          false);
}

TEST_CASE("GENERATE makes a key only the device knows, usable like an imported one",
          "[device][wrapped][commands][data]") {
    WrappedRig w(wrapped_controller());
    auto& h = w.rig.host();
    const auto a = w.km.generate();
    const auto b = w.km.generate();
    REQUIRE(status_of(a) == "ok");
    REQUIRE(status_of(b) == "ok");
    CHECK(a.out.size() == ufs::km::kBlobLen);
    CHECK(a.out[2] == 1);
    const auto eph_a = w.km.prepare(a.out);
    const auto eph_b = w.km.prepare(b.out);
    REQUIRE(status_of(eph_a) == "ok");
    REQUIRE(status_of(eph_b) == "ok");
    CHECK(w.km.derive(eph_a.out).out != w.km.derive(eph_b.out).out);

    REQUIRE(status_of(w.km.program(eph_a.out, 0, 4096)) == "ok");
    REQUIRE(status_of(w.km.program(eph_b.out, 1, 4096)) == "ok");
    const auto data = test::pattern_bytes(4096, 9);
    REQUIRE(h.write(0, 0, data, {true, 0, 7}).ocs == ufs::ocs::kSuccess);
    REQUIRE(h.write(0, 1, data, {true, 1, 7}).ocs == ufs::ocs::kSuccess);
    CHECK(w.rig.medium(0, 0, 0, 4096) != data);
    CHECK(w.rig.medium(0, 0, 0, 4096) != w.rig.medium(0, 0, 4096, 4096)); // two keys
    CHECK(h.read(0, 0, 1, {true, 0, 7}).in == data);
    CHECK(h.read(0, 1, 1, {true, 1, 7}).in == data);
    CHECK(h.read(0, 1, 1, {true, 0, 7}).in != data); // the other key
}

TEST_CASE("every refusal has its status, changes nothing and returns nothing",
          "[device][wrapped][errors]") {
    WrappedRig w(wrapped_controller("", true));
    auto& h = w.rig.host();
    const auto raw = raw_key(4);
    const auto blobs = wrap_key(w.km, raw);
    const auto& lt = blobs.lt;
    const auto& eph = blobs.eph;

    // a raw key in slot 1, to see that refused PROGRAMs leave it alone
    const auto caps = ufs::read_crypto_capabilities(h);
    const auto raw_xts = test::pattern_bytes(64, 11);
    ufs::program_keyslot(
        h, caps, 1, ufs::xts_key_image({raw_xts.data(), 32}, {raw_xts.data() + 32, 32}), 4096, 0);
    const auto data = test::pattern_bytes(4096, 12);
    REQUIRE(h.write(0, 9, data, {true, 1, 3}).ocs == ufs::ocs::kSuccess);
    const auto ct_before = w.rig.medium(0, 0, 9 * 4096, 4096);
    const auto fp_before =
        w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state")["slots"][1]["key_fp"];

    std::vector<Refusal> cases;
    cases.push_back({"opcode 0", w.km.run_raw(0, {}, 0, 0, 0), "opcode"});
    cases.push_back({"opcode 6", w.km.run_raw(6, eph, 0, 0, 64), "opcode"});
    cases.push_back({"opcode 15", w.km.run_raw(15, eph, 0, 0, 64), "opcode"});
    cases.push_back({"IMPORT of 31 bytes", w.km.run(Op::import_key, raw, 0, 0, 31), "length"});
    cases.push_back({"IMPORT of 64 bytes", w.km.run(Op::import_key, lt), "length"});
    cases.push_back({"GENERATE with input", w.km.run(Op::generate, raw), "length"});
    cases.push_back({"PREPARE of a truncated blob", w.km.run(Op::prepare, lt, 0, 0, 63), "length"});
    cases.push_back({"DERIVE of 65 bytes", w.km.run(Op::derive, eph, 0, 0, 65), "length"});
    cases.push_back({"PROGRAM slot 4 of 4", w.km.program(eph, 4, 4096), "slot"});
    cases.push_back({"PROGRAM slot 255", w.km.program(eph, 255, 4096), "slot"});
    cases.push_back({"PROGRAM on the AES-128-XTS cap", w.km.program(eph, 1, 4096, 1), "config"});
    cases.push_back({"PROGRAM on capidx 2 (none)", w.km.program(eph, 1, 4096, 2), "config"});
    cases.push_back(
        {"PROGRAM with DUSIZE 8192 (not in SDUSB)", w.km.program(eph, 1, 8192), "config"});
    cases.push_back({"PROGRAM with DUSIZE 0", w.km.program(eph, 1, 0), "config"});
    cases.push_back(
        {"PROGRAM with DUSIZE 3 (not one-hot)", w.km.run(Op::program, eph, 1, 0x03), "config"});
    cases.push_back({"PREPARE of an ephemeral blob", w.km.prepare(eph), "blob"});
    cases.push_back({"DERIVE of a long-term blob", w.km.derive(lt), "blob"});
    cases.push_back({"PROGRAM of a long-term blob", w.km.program(lt, 1, 4096), "blob"});
    auto bad_version = lt;
    bad_version[1] = 2;
    cases.push_back({"PREPARE of format version 2", w.km.prepare(bad_version), "blob"});
    auto bad_reserved = lt;
    bad_reserved[3] = 1;
    cases.push_back({"PREPARE with byte 3 set", w.km.prepare(bad_reserved), "blob"});
    check_refusals(cases);
    check_every_bit_authenticated(w.km, blobs, 1);

    // DMA: unassigned memory, the controller's own registers, an output that runs off RAM
    const std::vector<std::uint8_t> no_input;
    w.km.set_buffer(0xfff00000000ull, false);
    CHECK(status_of(w.km.run(Op::prepare, no_input, 0, 0, 64)) == "dma");
    w.km.set_buffer(h.bar_addr(), false);
    CHECK(status_of(w.km.run(Op::derive, no_input, 0, 0, 64)) == "dma");
    CHECK(h.rreg(ufs::km::kKmid) == ufs::km::kId); // still there
    const std::uint64_t ram_end = 256ull << 20;
    w.km.set_buffer(ram_end - 0x40);
    const auto edge = w.km.import_key(raw); // input in RAM, output at ram_end + 0x40
    CHECK(status_of(edge) == "dma");
    CHECK(edge.out.empty());
    w.km.set_buffer(kBuffer);

    // slot 1 still holds the raw key, unchanged
    CHECK(w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state")["slots"][1]["key_fp"] ==
          fp_before);
    CHECK(h.read(0, 9, 1, {true, 1, 3}).in == data);
    CHECK(w.rig.medium(0, 0, 9 * 4096, 4096) == ct_before);

    // each refusal is a km event with its error and no master key fingerprint, but for the
    // three unknown opcodes (no op name to log: counted and traced only)
    std::size_t refused = 0;
    for (const auto& k : log_lines(w.rig, "km")) {
        if (k["ok"] == false) {
            ++refused;
            CHECK(k.contains("error"));
            CHECK(k["master_fp"] == "");
        }
    }
    CHECK(refused == cases.size() - 3 + 3 * ufs::km::kBlobLen + 3);
    CHECK(w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state")["counters"]["km_errors"] ==
          refused + 3);
}

TEST_CASE("crypto-raw-keys=off refuses raw keys in x-CRYPTOCFG and keeps wrapped ones",
          "[device][wrapped][errors]") {
    WrappedRig w(wrapped_controller("crypto-raw-keys=off", true));
    auto& h = w.rig.host();
    const auto caps = ufs::read_crypto_capabilities(h);
    const auto raw_xts = test::pattern_bytes(64, 13);
    ufs::program_keyslot(
        h, caps, 0, ufs::xts_key_image({raw_xts.data(), 32}, {raw_xts.data() + 32, 32}), 4096, 0);
    const auto progs = log_lines(w.rig, "program");
    REQUIRE(!progs.empty());
    CHECK(progs.back()["ok"] == false);
    CHECK(progs.back()["error"] == "key-type");
    const auto data = test::pattern_bytes(4096, 14);
    CHECK(h.write(0, 0, data, {true, 0, 1}).ocs == ufs::ocs::kInvalidCryptoConfig);

    REQUIRE(status_of(w.km.program(ephemeral_of(w.km, raw_key(5)), 0, 4096)) == "ok");
    REQUIRE(h.write(0, 0, data, {true, 0, 1}).ocs == ufs::ocs::kSuccess);
    CHECK(w.rig.medium(0, 0, 0, 4096) ==
          models::xts_encrypt(hw::inline_encryption_key(raw_key(5)), 1, 4096, data));
}

TEST_CASE("ephemeral blobs die with a device reset and survive a host controller reset; "
          "long-term blobs survive both",
          "[device][wrapped][lifecycle]") {
    WrappedRig w(wrapped_controller());
    auto& h = w.rig.host();
    const auto raw = raw_key(6);
    const auto blobs = wrap_key(w.km, raw);
    const auto& lt = blobs.lt;
    const auto& eph = blobs.eph;

    // HCE 1 -> 0 -> 1: keyslots are wiped, the ephemeral blob still programs (Linux
    // reprograms its keys from the blobs it holds after a host reset)
    REQUIRE(status_of(w.km.program(eph, 0, 4096)) == "ok");
    h.disable();
    h.enable();
    CHECK(w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state")["slots"][0]["armed"] == false);
    CHECK(status_of(w.km.program(eph, 0, 4096)) == "ok");
    CHECK(w.km.derive(eph).out == hw::sw_secret(raw));

    // system_reset: a new ephemeral key; the old blob is refused, the long-term one prepares
    // a new ephemeral blob of the same master key
    auto& m = w.rig.machine();
    m.qmp("system_reset");
    ufs::PciConfig pci(m);
    const auto fns = pci.find(ufs::kRedHatVendor, ufs::kUfsDevice);
    REQUIRE(fns.size() == 1);
    pci.map_bar(fns[0], 0, h.bar_addr());
    pci.enable(fns[0]);
    CHECK(h.rreg(ufs::km::kKmba) == 0u); // registers reset too
    w.km.set_buffer(kBuffer);
    CHECK(status_of(w.km.derive(eph)) == "blob");
    CHECK(status_of(w.km.program(eph, 0, 4096)) == "blob");
    const auto eph2 = w.km.prepare(lt);
    REQUIRE(status_of(eph2) == "ok");
    CHECK(eph2.out != eph);
    CHECK(w.km.derive(eph2.out).out == hw::sw_secret(raw));
}

TEST_CASE("the controllers of a machine share its key manager, as dm passthrough expects",
          "[device][wrapped][lifecycle]") {
    // Linux's dm runs import / prepare / derive on one underlying device and programs the
    // ephemeral blob into every device's keyslots
    auto a = wrapped_controller();
    auto b = wrapped_controller();
    b.id = "ufs1";
    SECTION("default long-term key: both blob kinds work on both controllers") {
        test::Rig rig(std::vector<test::ControllerSpec>{a, b});
        KeyManager km0(rig.host(0), kBuffer);
        KeyManager km1(rig.host(1), kBuffer + 0x1000);
        const auto raw = raw_key(9);
        const auto lt = km0.import_key(raw);
        REQUIRE(status_of(lt) == "ok");
        const auto eph = km1.prepare(lt.out);
        REQUIRE(status_of(eph) == "ok");
        CHECK(km0.derive(eph.out).out == hw::sw_secret(raw));
        REQUIRE(status_of(km0.program(eph.out, 0, 4096)) == "ok");
        REQUIRE(status_of(km1.program(eph.out, 3, 4096)) == "ok");
        const auto data = test::pattern_bytes(4096, 16);
        REQUIRE(rig.host(0).write(0, 2, data, {true, 0, 5}).ocs == ufs::ocs::kSuccess);
        REQUIRE(rig.host(1).write(0, 2, data, {true, 3, 5}).ocs == ufs::ocs::kSuccess);
        const auto want = models::xts_encrypt(hw::inline_encryption_key(raw), 5, 4096, data);
        CHECK(rig.medium(0, 0, 2 * 4096, 4096) == want);
        CHECK(rig.medium(1, 0, 2 * 4096, 4096) == want);
    }
    SECTION("a controller with a wrapping key of its own: its long-term blobs are its own, "
            "ephemeral blobs still shared") {
        test::Rig rig(std::vector<test::ControllerSpec>{with_secret(a, kLtSecretA), b}, false);
        KeyManager km0(rig.host(0), kBuffer);
        KeyManager km1(rig.host(1), kBuffer + 0x1000);
        const auto lt = km0.import_key(raw_key(10));
        REQUIRE(status_of(lt) == "ok");
        CHECK(status_of(km1.prepare(lt.out)) == "blob");
        const auto eph = km0.prepare(lt.out);
        REQUIRE(status_of(eph) == "ok");
        CHECK(km1.derive(eph.out).out == hw::sw_secret(raw_key(10)));
    }
}

TEST_CASE("crypto-wrapping-key: long-term blobs outlive the QEMU process that made them",
          "[device][wrapped][lifecycle]") {
    const auto raw = raw_key(7);
    std::vector<std::uint8_t> lt;
    {
        WrappedRig w(with_secret(wrapped_controller(), kLtSecretA), false);
        const auto r = w.km.import_key(raw);
        REQUIRE(status_of(r) == "ok");
        lt = r.out;
    }
    SECTION("the same wrapping key in the next process: the blob works") {
        WrappedRig w(with_secret(wrapped_controller(), kLtSecretA), false);
        const auto eph = w.km.prepare(lt);
        REQUIRE(status_of(eph) == "ok");
        CHECK(w.km.derive(eph.out).out == hw::sw_secret(raw));
    }
    SECTION("another wrapping key: refused as foreign") {
        WrappedRig w(with_secret(wrapped_controller(), kLtSecretB), false);
        CHECK(status_of(w.km.prepare(lt)) == "blob");
    }
    SECTION("no wrapping key: a random one, refused") {
        WrappedRig w(wrapped_controller(), false);
        CHECK(status_of(w.km.prepare(lt)) == "blob");
    }
}

TEST_CASE("bad key manager properties fail -device with one clear message",
          "[device][wrapped][properties]") {
    struct Case {
        std::string props;
        std::vector<std::string> objects;
        const char* message;
    };
    const auto c =
        GENERATE(Case{"crypto-wrapped-keys=on", {}, "crypto-wrapped-keys=on needs crypto=on"},
                 Case{"crypto=on,crypto-raw-keys=off", {}, "crypto-raw-keys=off is only for"},
                 Case{"crypto=on,crypto-wrapping-key=k",
                      {"secret,id=k,data=x"},
                      "crypto-wrapping-key is only for"},
                 Case{"crypto=on,crypto-wrapped-keys=on,crypto-wrapping-key=nosuch", {}, "nosuch"},
                 Case{"crypto=on,crypto-wrapped-keys=on,crypto-wrapping-key=k",
                      {"secret,id=k,data=0123456789abcdef"},
                      "must hold 32 bytes, it holds 16"});
    INFO(c.props);
    test::ControllerSpec s;
    s.props = c.props;
    s.objects = c.objects;
    bool failed = false;
    try {
        test::Rig rig(s, false);
    } catch (const qtest::Error& e) {
        failed = true;
        CHECK_THAT(std::string(e.what()), Catch::Matchers::ContainsSubstring(c.message));
    }
    CHECK(failed);
}

TEST_CASE("the secret scan finds a key as a hex run and as a traced register value",
          "[device][wrapped][security]") {
    const auto raw = raw_key(9);
    const std::vector<std::pair<const char*, models::Bytes>> secrets = {{"master key", raw}};
    CHECK(exposures(secrets, {{"clean", "ufs_mmio_write addr 0x4 data 0x1"}}).empty());
    // bytes 8..15 as the hex the log would print
    const auto hex = models::to_hex(raw).substr(16, 16);
    CHECK(exposures(secrets, {{"log", "x" + hex + "y"}}).size() == 1);
    // bytes 12..15 as the little-endian dword an MMIO trace prints
    char dword[16];
    std::snprintf(dword, sizeof(dword), "0x%x",
                  static_cast<unsigned>(raw[12] | raw[13] << 8 | raw[14] << 16 |
                                        static_cast<unsigned>(raw[15]) << 24));
    CHECK_FALSE(exposures(secrets, {{"trace", std::string("data ") + dword}}).empty());
}

TEST_CASE("no master key, derived key, secret or blob in the trace, the log or QMP",
          "[device][wrapped][security]") {
    auto spec = wrapped_controller("crypto-log-keys=off", true);
    spec.trace = {"enable=ufs_*", "enable=inline_crypto_*", "enable=pci_*"};
    WrappedRig w(spec);
    const auto raw = raw_key(8);
    const auto lt = w.km.import_key(raw);
    REQUIRE(status_of(lt) == "ok");
    const auto eph = w.km.prepare(lt.out);
    REQUIRE(status_of(eph) == "ok");
    const auto secret = w.km.derive(eph.out);
    REQUIRE(status_of(secret) == "ok");
    REQUIRE(status_of(w.km.program(eph.out, 0, 4096)) == "ok");
    const auto data = test::pattern_bytes(4096, 15);
    REQUIRE(w.rig.host().write(0, 0, data, {true, 0, 1}).ocs == ufs::ocs::kSuccess);
    const auto gen = w.km.generate();
    REQUIRE(status_of(gen) == "ok");
    const auto state = w.rig.machine().qom_get(w.rig.qom_path(), "crypto-state").dump();
    w.rig.machine().shutdown();

    const auto trace = test::slurp(w.rig.trace_path());
    const auto log = test::slurp(w.rig.log_path(0));
    REQUIRE(trace.find("inline_crypto_km_command") != std::string::npos); // it traced
    REQUIRE(log.find("\"km\"") != std::string::npos);
    const auto inline_key = hw::inline_encryption_key(raw);
    const std::vector<std::pair<const char*, models::Bytes>> secrets = {
        {"master key", raw},
        {"inline key K1", {inline_key.begin(), inline_key.begin() + 32}},
        {"inline key K2", {inline_key.begin() + 32, inline_key.end()}},
        {"software secret", secret.out},
        {"long-term blob tail", {lt.out.begin() + 16, lt.out.end()}},
        {"ephemeral blob tail", {eph.out.begin() + 16, eph.out.end()}},
        {"generated blob tail", {gen.out.begin() + 16, gen.out.end()}},
    };
    const auto leaks =
        exposures(secrets, {{"trace", trace}, {"event log", log}, {"QMP crypto-state", state}});
    INFO(leaks.size() << " leak(s); first: " << (leaks.empty() ? "" : leaks.front()));
    CHECK(leaks.empty());
}
