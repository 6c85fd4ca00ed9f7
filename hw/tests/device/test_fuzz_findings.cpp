// Device defects found by ./icemu fuzz (docs/fuzzing.md), each as the small register and
// descriptor sequence the fuzzer's input reduces to. A defect that is not fixed yet is tagged
// [!shouldfail] (Catch2 reports the test passed while its checks fail); the fix removes the tag.

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "device/rig.hpp"
#include "qtest/machine.hpp"
#include "ufs/pci.hpp"

using namespace icemu;

namespace {

constexpr std::uint64_t kBar = 0xe0000000ull;
constexpr std::uint64_t kUtrl = 0x100000;
constexpr std::uint64_t kGoodUcd = 0x200000;
constexpr std::uint32_t kIs = 0x20, kHce = 0x34, kUtrlba = 0x50, kUtrlbau = 0x54, kUtrldbr = 0x58,
                        kUtrlrsr = 0x60, kUiccmd = 0x90;
// UFSHCI: IS.SBFES (System Bus Fatal Error Status), OCS FATAL_ERROR
constexpr std::uint32_t kIsSbfes = 1u << 17;
constexpr std::uint8_t kOcsFatalError = 0x07;

// A UTRD (UFSHCI 4.0 §6.1.1) for a NOP OUT whose UCD is at `ucd`, response `rsp_dw` dwords in.
std::array<std::uint8_t, 32> nop_utrd(std::uint64_t ucd, std::uint16_t rsp_dw) {
    std::array<std::uint8_t, 32> d{};
    auto put32 = [&](std::size_t at, std::uint32_t v) { std::memcpy(d.data() + at, &v, 4); };
    auto put16 = [&](std::size_t at, std::uint16_t v) { std::memcpy(d.data() + at, &v, 2); };
    put32(0, 1u << 28); // CT = UFS storage, no data
    put32(8, 0xf);      // OCS: invalid until the host controller writes it
    put32(16, static_cast<std::uint32_t>(ucd));
    put32(20, static_cast<std::uint32_t>(ucd >> 32));
    put16(24, 0x20);   // response UPIU length (dwords)
    put16(26, rsp_dw); // response UPIU offset (dwords)
    return d;
}

struct Controller {
    qtest::Machine& m;
    ufs::PciFunction fn;

    void map() {
        ufs::PciConfig pci(m);
        pci.map_bar(fn, 0, kBar);
        pci.enable(fn);
    }
    // What ufshcd does at probe: HCE 1 -> 0 -> 1, link startup, the UTRL base, run.
    void bring_up() {
        m.writel(kBar + kHce, 0);
        m.writel(kBar + kHce, 1);
        m.writel(kBar + kUiccmd, 0x16);
        m.writel(kBar + kUtrlba, static_cast<std::uint32_t>(kUtrl));
        m.writel(kBar + kUtrlbau, 0);
        m.writel(kBar + kUtrlrsr, 1);
    }
    // Rings slot 0 and returns whether it completed (its UTRLDBR bit cleared) within 2 s.
    bool ring_slot0() {
        m.writel(kBar + kUtrldbr, 1);
        return test::eventually(
            [&] {
                m.clock_step(1000000);
                return (m.readl(kBar + kUtrldbr) & 1u) == 0;
            },
            std::chrono::seconds(2));
    }
};

} // namespace

TEST_CASE("ufs: a request that fails on DMA completes with OCS FATAL_ERROR and IS.SBFES, and "
          "its slot works after the host reset Linux then does",
          "[device][hostile][reset][fuzz]") {
    // Found by ./icemu fuzz (ufs-crypto): inputs after one like this could no longer use the
    // slot, because a machine reset did not reset the UFS host controller (QEMU's ufs has no
    // reset of its own) and a request whose UPIU could not be read stayed RUNNING, one whose
    // response could not be written stayed in ERROR, with its UTRLDBR bit set, forever:
    // HCE 1 -> 0 -> 1 and system_reset left it so. Now the request completes (UFSHCI: OCS
    // FATAL_ERROR in its UTRD, IS.SBFES), and ufshcd answers SBFES with HCE 1 -> 0 -> 1.
    const bool machine_reset = GENERATE(false, true);
    INFO((machine_reset ? "system_reset" : "HCE 1 -> 0 -> 1"));
    test::ControllerSpec spec;
    spec.props = "crypto=on";
    test::Rig rig(spec, false);
    auto& m = rig.machine();
    ufs::PciConfig pci(m);
    const auto fns = pci.find(0x1b36, 0x0013);
    REQUIRE(fns.size() == 1);
    Controller c{m, fns[0]};
    c.map();
    c.bring_up();

    // the check can pass: a good NOP OUT completes on a fresh controller
    const std::array<std::uint8_t, 12> nop_out{}; // UPIU header, transaction code 0 (NOP OUT)
    m.memwrite(kGoodUcd, nop_out);
    m.memwrite(kUtrl, nop_utrd(kGoodUcd, 0x80));
    REQUIRE(c.ring_slot0());

    SECTION("the UPIU cannot be read (UCD outside guest memory)") {
        m.memwrite(kUtrl, nop_utrd(0x1000000000000ull, 0x80));
    }
    SECTION("the response cannot be written (UCD in the last page of RAM, response past it)") {
        const std::uint64_t ucd = (256ull << 20) - 4096; // the Rig's -m 256M
        m.memwrite(ucd, nop_out);
        m.memwrite(kUtrl, nop_utrd(ucd, 0x400));
    }
    // fails on DMA: completed all the same, the OCS says why, IS says the bus failed
    m.writel(kBar + kIs, m.readl(kBar + kIs));
    CHECK(c.ring_slot0());
    CHECK((m.readl(kBar + kIs) & kIsSbfes) != 0);
    CHECK(m.readb(kUtrl + 8) == kOcsFatalError);

    if (machine_reset) {
        m.qmp("system_reset");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        c.map();
    }
    c.bring_up();
    CHECK(m.readl(kBar + kUtrldbr) == 0u);
    m.memwrite(kUtrl, nop_utrd(kGoodUcd, 0x80));
    CHECK(c.ring_slot0());
    CHECK(m.readb(kUtrl + 8) == 0);
}
