// crypto=on register model: capability decoding, keyslot readback rules, HCE.CGE, the
// 19-write program/evict sequence, and the QMP crypto-state view. Expected values: the model.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "device/modelled_rig.hpp"
#include "icemu/models/xts.hpp"

using namespace icemu;
using test::CryptoOptions;
using test::ModelledRig;
namespace mu = icemu::models::ufshci;

namespace {

struct CapCase {
    unsigned slots;
    const char* caps;
};

} // namespace

TEST_CASE("CAP.CS, CCAP and x-CRYPTOCAP advertise what crypto-keyslots and crypto-caps configure",
          "[device][crypto][registers]") {
    const auto c =
        GENERATE(CapCase{32, "aes-xts-256:0x0f"}, CapCase{1, "aes-xts-128:0x08"},
                 CapCase{7, "aes-xts-256:0x0f/aes-xts-128:0x08/aes-ecb-256:0x0f"},
                 CapCase{256, "aes-xts-256:0xff/aes-xts-128:0x01/aes-ecb-128:0x0f/"
                              "bitlocker-aes-cbc-256:0x0f/essiv-aes-cbc-128:0x02/aes-xts-192:0x0f/"
                              "aes-xts-512:0x10"},
                 CapCase{33, "aes-xts-256:0x80"});
    INFO("crypto-keyslots=" << c.slots << " crypto-caps=" << c.caps);
    ModelledRig r(test::crypto_controller(CryptoOptions{c.caps, c.slots}), false);
    auto& h = r.host();
    const auto& m = r.model();

    CHECK((h.rreg(ufs::reg::kCap) & ufs::bits::kCapCs) == (m.read(mu::kRegCap) & mu::kCapCs));
    CHECK(h.rreg(ufs::reg::kCcap) == m.read(mu::kRegCcap));
    const auto caps = ufs::read_crypto_capabilities(h);
    CHECK(caps.keyslots == c.slots);
    CHECK(caps.cfgptr == mu::kCfgPtr);
    const auto model_caps = mu::parse_crypto_caps(c.caps);
    REQUIRE(caps.cc == model_caps.size());
    for (unsigned i = 0; i < caps.cc; ++i) {
        INFO("x-CRYPTOCAP[" << i << "]");
        CHECK(h.rreg(ufs::reg::kCryptoCap0 + 4 * i) == m.read(mu::kRegCryptoCap0 + 4 * i));
        CHECK(caps.caps[i].algid == static_cast<unsigned>(model_caps[i].algid));
        CHECK(caps.caps[i].sdusb == model_caps[i].sdusb);
        CHECK(caps.caps[i].ks == static_cast<unsigned>(model_caps[i].ks));
    }
    // Entries past CC are reserved and read 0.
    CHECK(h.rreg(ufs::reg::kCryptoCap0 + 4 * caps.cc) == 0u);
    // BAR0 grows to cover the keyslot array.
    CHECK(h.bar_size() == m.bar_size());
}

TEST_CASE("crypto=on with no other property gives 32 AES-256-XTS slots for 512..4096-byte units",
          "[device][crypto][registers]") {
    test::ControllerSpec s;
    s.props = "crypto=on";
    test::Rig rig(s, false);
    const mu::Engine model(mu::Config{});
    CHECK(rig.host().rreg(ufs::reg::kCcap) == model.read(mu::kRegCcap));
    CHECK(rig.host().rreg(ufs::reg::kCryptoCap0) == model.read(mu::kRegCryptoCap0));
    CHECK(rig.host().rreg(ufs::reg::kCryptoCap0 + 4) == 0u);
}

TEST_CASE("keyslot key dwords read as zero while dword 16 and dwords 17-31 read back",
          "[device][crypto][registers]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x0f/aes-xts-128:0x0f", 4}),
                  false);
    auto& h = r.host();
    const auto key = test::test_cryptokey(256, 1);
    r.program(0, 2, key, 4096, 0);
    // Dwords the 19-write sequence does not touch.
    for (unsigned dw = 18; dw < 32; ++dw) {
        h.wreg(r.caps().cfg_offset(2) + 4 * dw, 0x11110000u + dw);
    }
    for (unsigned slot = 0; slot < 4; ++slot) {
        for (unsigned dw = 0; dw < 32; ++dw) {
            const std::uint32_t off = r.caps().cfg_offset(slot) + 4 * dw;
            INFO("slot " << slot << " dword " << dw);
            CHECK(h.rreg(off) == r.model().read(off));
            if (dw < 16) {
                CHECK(h.rreg(off) == 0u);
            }
        }
    }
    CHECK(h.rreg(r.caps().cfg_offset(2) + 0x40) == ufs::cfg_dword16(4096, 0, true));
}

TEST_CASE("HCE.CGE is latched from every HCE write and reads back", "[device][crypto][registers]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{}), false);
    auto& h = r.host();
    for (const std::uint32_t v : {0x3u, 0x1u, 0x3u, 0x2u, 0x0u}) {
        INFO("HCE <- " << v);
        h.wreg(ufs::reg::kHce, v);
        // HCE.HCE may take a moment to settle; CGE is latched at once.
        CHECK((h.rreg(ufs::reg::kHce) & ufs::bits::kHceCge) ==
              (r.model().read(mu::kRegHce) & mu::kHceCge));
    }
}

TEST_CASE("the Linux 19-write sequence arms a slot and the evict sequence disarms it",
          "[device][crypto][registers]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x0f", 8}));
    const auto key = test::test_cryptokey(256, 2);
    const auto data = test::pattern_bytes(4096, 3);
    r.program(0, 5, key, 4096);
    CHECK(r.model().slot(5).valid());
    auto w = r.write(0, 0, 10, data, {true, 5, 42});
    CHECK(w.ok());
    INFO(w.divergence);
    const auto state = r.rig().machine().qom_get(r.rig().qom_path(), "crypto-state");
    REQUIRE(state.contains("slots"));
    CHECK(state["slots"][5]["armed"] == true);
    CHECK(state["slots"][5]["key_fp"] == r.model().slot(5).key_fp);

    r.evict(0, 5);
    CHECK_FALSE(r.model().slot(5).armed);
    const auto state2 = r.rig().machine().qom_get(r.rig().qom_path(), "crypto-state");
    CHECK(state2["slots"][5]["armed"] == false);
    auto w2 = r.write(0, 0, 11, data, {true, 5, 42});
    INFO(w2.divergence);
    CHECK(w2.ok());
    CHECK(w2.got.ocs == ufs::ocs::kInvalidCryptoConfig);
}

TEST_CASE("crypto-state reports the keyslot table and counters and never contains key bytes",
          "[device][crypto][registers]") {
    ModelledRig r(test::crypto_controller(CryptoOptions{"aes-xts-256:0x0f/aes-xts-128:0x0f", 4}));
    const auto k256 = test::test_cryptokey(256, 10);
    const auto k128 = test::test_cryptokey(128, 11);
    r.program(0, 0, k256, 512, 0);
    r.program(0, 3, k128, 4096, 1);
    const auto data = test::pattern_bytes(8192, 12);
    CHECK(r.write(0, 0, 0, data, {true, 0, 7}).ok());
    CHECK(r.read(0, 0, 0, 2, {true, 0, 7}).ok());
    CHECK(r.write(0, 0, 4, data, {true, 1, 7}).got.ocs == ufs::ocs::kInvalidCryptoConfig);

    const auto state = r.rig().machine().qom_get(r.rig().qom_path(), "crypto-state");
    INFO(state.dump());
    CHECK(state["cge"] == true);
    REQUIRE(state["slots"].size() == 4);
    for (unsigned s = 0; s < 4; ++s) {
        INFO("slot " << s);
        const auto& js = state["slots"][s];
        const auto& ms = r.model().slot(s);
        CHECK(js["slot"] == s);
        CHECK(js["armed"] == ms.armed);
        if (ms.valid()) {
            CHECK(js["valid"] == true);
            CHECK(js["capidx"] == ms.capidx);
            CHECK(js["dusize"] == ms.dusize);
            CHECK(js["key_fp"] == ms.key_fp);
        } else {
            CHECK(js["valid"] == false);
            CHECK(js["key_fp"] == "");
        }
    }
    const auto& c = state["counters"];
    CHECK(c["programs"] == 2);
    CHECK(c["ce_writes"] == 2); // finished or refused
    CHECK(c["ce_reads"] == 1);
    CHECK(c["errors"] == 1);
    CHECK(c["faults"] == 0);
    CHECK(c["bytes"] == 16384);

    // No window of 8 key bytes appears in hex (either case) or as a decimal key dword.
    const std::string text = state.dump();
    for (const auto* key : {&k256, &k128}) {
        for (std::size_t i = 0; i + 8 <= 64; i += 4) {
            const auto window = std::span(*key).subspan(i, 8);
            if (std::all_of(window.begin(), window.end(), [](auto b) { return b == 0; })) {
                continue;
            }
            auto hex = models::to_hex(window);
            CHECK(text.find(hex) == std::string::npos);
            std::transform(hex.begin(), hex.end(), hex.begin(), ::toupper);
            CHECK(text.find(hex) == std::string::npos);
        }
        for (std::size_t i = 0; i < 64; i += 4) {
            const std::uint32_t dw = std::uint32_t{(*key)[i]} | std::uint32_t{(*key)[i + 1]} << 8 |
                                     std::uint32_t{(*key)[i + 2]} << 16 |
                                     std::uint32_t{(*key)[i + 3]} << 24;
            if (dw > 0xffff) {
                CHECK(text.find(std::to_string(dw)) == std::string::npos);
            }
        }
    }
}
