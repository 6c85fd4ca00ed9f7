// pci-identity=intel-mtl: the UFS host presents Intel's Meteor Lake identity (8086:7e47), which
// stock Linux's ufshcd-pci drives with inline crypto; its MCQ operation registers move to the
// fixed 0x2800 that driver assumes and x-CRYPTOCFG to 0x3000 (docs/developer-loop.md). The
// ciphertext is checked against the models' XTS, not against the device.
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "device/rig.hpp"
#include "icemu/models/xts.hpp"
#include "ufs/crypto.hpp"

using namespace icemu;

namespace {

test::ControllerSpec spec(bool mcq, const std::string& identity) {
    test::ControllerSpec s;
    s.mcq = mcq;
    s.props = "crypto=on,crypto-keyslots=32";
    if (!identity.empty()) {
        s.props += ",pci-identity=" + identity;
    }
    return s;
}

// SQDAO of MCQ queue 0: QCFGPTR * 0x200 + 0x0c (UFSHCI 4.0 MCQ queue configuration).
std::uint32_t sqdao0(ufs::UfsHost& h) {
    const std::uint32_t qcfgptr = (h.rreg(ufs::reg::kMcqCap) >> 16) & 0xff;
    return h.rreg(qcfgptr * 0x200 + 0x0c);
}

} // namespace

TEST_CASE("pci-identity=intel-mtl: Intel's id, x-CRYPTOCFG at 0x3000, MCQ registers at 0x2800, "
          "and the model's ciphertext",
          "[device][identity]") {
    const bool mcq = GENERATE(false, true);
    INFO((mcq ? "MCQ" : "legacy doorbell"));
    test::Rig rig(spec(mcq, "intel-mtl"));
    auto& h = rig.host();
    ufs::PciConfig pci(rig.machine());
    REQUIRE(pci.find(0x8086, 0x7e47).size() == 1);
    CHECK(pci.find(ufs::kRedHatVendor, ufs::kUfsDevice).empty());
    const auto caps = ufs::read_crypto_capabilities(h);
    CHECK(caps.cfgptr == 0x30);
    CHECK(caps.keyslots == 32);
    if (mcq) {
        CHECK(sqdao0(h) == 0x2800);
    }
    // Slot 31's configuration ends at 0x4000: both regions fit the BAR without overlapping.
    CHECK(h.bar_size() >= 0x4000);

    std::array<std::uint8_t, 32> k1{}, k2{};
    for (unsigned i = 0; i < 32; ++i) {
        k1[i] = static_cast<std::uint8_t>(i + 1);
        k2[i] = static_cast<std::uint8_t>(0xa0 + i);
    }
    const auto key = ufs::xts_key_image(k1, k2);
    ufs::program_keyslot(h, caps, 31, key, 4096, 0);
    const auto data = test::pattern_bytes(16384, 5);
    const auto w = h.write(0, 8, data, {true, 31, 77});
    REQUIRE(w.ocs == ufs::ocs::kSuccess);
    models::Bytes xkey(k1.begin(), k1.end());
    xkey.insert(xkey.end(), k2.begin(), k2.end());
    CHECK(rig.medium(0, 0, 8 * 4096, data.size()) == models::xts_encrypt(xkey, 77, 4096, data));
    const auto r = h.read(0, 8, 4, {true, 31, 77});
    REQUIRE(r.ocs == ufs::ocs::kSuccess);
    CHECK(r.in == data);
}

TEST_CASE("the default identity is QEMU's: 1b36:0013, x-CRYPTOCFG at 0x2000, MCQ at 0x1000",
          "[device][identity]") {
    test::Rig rig(spec(true, ""));
    ufs::PciConfig pci(rig.machine());
    CHECK(pci.find(ufs::kRedHatVendor, ufs::kUfsDevice).size() == 1);
    CHECK(pci.find(0x8086, 0x7e47).empty());
    CHECK(ufs::read_crypto_capabilities(rig.host()).cfgptr == 0x20);
    CHECK(sqdao0(rig.host()) == 0x1000);
}

TEST_CASE("an unknown pci-identity is refused by name", "[device][identity]") {
    try {
        test::Rig rig(spec(false, "intel-xyz"), false);
        FAIL("QEMU accepted pci-identity=intel-xyz");
    } catch (const qtest::QemuDied& e) {
        CHECK_THAT(e.what(), Catch::Matchers::ContainsSubstring(
                                 "pci-identity must be qemu or intel-mtl, not 'intel-xyz'"));
    }
}
