// ACPI S3 on q35: QEMU's wake-up resets every device (pc_machine_wakeup), and the firmware QEMU
// ships (SeaBIOS) restores only PIIX4's PM base on resume. QEMU patch 0021 keeps the ICH9 LPC's
// PMBASE and ACPI_CNTL across that reset, so the guest's ACPI PM timer and PM1 registers are
// still there when it resumes (without them Linux's clocksource watchdog compares the TSC
// against a PM timer that reads 0xffffff for good, switches to it, and time stops). Register
// offsets: Intel ICH9 datasheet (LPC D31:F0 PMBASE 0x40, ACPI_CNTL 0x44; PM1_STS, PM1_CNT,
// PM1_TMR at PMBASE + 0, 4, 8); the sleep type is the one QEMU's DSDT gives \_S3 (1).
#include <catch2/catch_test_macros.hpp>

#include <chrono>
#include <string>

#include "device/rig.hpp"
#include "ufs/pci.hpp"

using namespace icemu;

namespace {

constexpr std::uint16_t kIch9Lpc = 0x2918;
constexpr std::uint8_t kPmBase = 0x40, kAcpiCntl = 0x44;
constexpr std::uint32_t kAcpiEn = 0x80;
constexpr std::uint16_t kPmIo = 0x600; // where the test maps the PM block
constexpr std::uint16_t kPm1Sts = kPmIo, kPm1Cnt = kPmIo + 4, kPmTmr = kPmIo + 8;
constexpr std::uint16_t kWakSts = 0x8000;                 // PM1_STS bit 15
constexpr std::uint16_t kSlpS3 = (1u << 10) | (1u << 13); // SLP_TYP 1, SLP_EN

std::string status(qtest::Machine& m) {
    return m.qmp("query-status").at("status").get<std::string>();
}

// The main loop acts on a suspend or wake-up request after the command that made it returns.
bool wait_status(qtest::Machine& m, const std::string& want) {
    return test::eventually([&] { return status(m) == want; }, std::chrono::seconds(2));
}

// The 24-bit PM timer counts at 3.579545 MHz of virtual time: 1 ms is about 3580 ticks.
std::uint32_t timer_ticks_over_1ms(qtest::Machine& m) {
    const std::uint32_t t0 = m.inl(kPmTmr);
    m.clock_step(1000000);
    const std::uint32_t t1 = m.inl(kPmTmr);
    INFO("PM timer read " << std::hex << t0 << " then " << t1);
    CHECK(t0 <= 0xffffffu);
    CHECK(t1 <= 0xffffffu);
    return (t1 - t0) & 0xffffffu;
}

} // namespace

TEST_CASE("q35 S3: the ACPI PM timer and PM1 registers survive QEMU's wake-up reset",
          "[device][s3]") {
    qtest::Machine m(test::bare_machine());
    ufs::PciConfig pci(m);
    const auto lpcs = pci.find(0x8086, kIch9Lpc);
    REQUIRE(lpcs.size() == 1);
    const auto lpc = lpcs.front();

    // What firmware does at boot: PM block at 0x600, ACPI decoding on.
    pci.write32(lpc, kPmBase, kPmIo);
    pci.write32(lpc, kAcpiCntl, kAcpiEn);
    const auto ticks_before = timer_ticks_over_1ms(m);
    CHECK(ticks_before >= 3500);
    CHECK(ticks_before <= 3660);

    m.outw(kPm1Cnt, kSlpS3);
    REQUIRE(wait_status(m, "suspended"));
    m.qmp("system_wakeup");
    REQUIRE(wait_status(m, "running"));

    CHECK((pci.read32(lpc, kPmBase) & 0xff80u) == kPmIo);
    CHECK((pci.read32(lpc, kAcpiCntl) & kAcpiEn) == kAcpiEn);
    // The wake-up set WAK_STS: the PM1 block answers at its base, it does not float to ones.
    const std::uint16_t sts = m.inw(kPm1Sts);
    INFO("PM1_STS " << std::hex << sts);
    CHECK(sts != 0xffff);
    CHECK((sts & kWakSts) != 0);
    const auto ticks_after = timer_ticks_over_1ms(m);
    CHECK(ticks_after >= 3500);
    CHECK(ticks_after <= 3660);
}

TEST_CASE("q35: a cold reset still returns PMBASE and ACPI_CNTL to their defaults",
          "[device][s3]") {
    qtest::Machine m(test::bare_machine());
    ufs::PciConfig pci(m);
    const auto lpc = pci.find(0x8086, kIch9Lpc).at(0);
    pci.write32(lpc, kPmBase, kPmIo);
    pci.write32(lpc, kAcpiCntl, kAcpiEn);
    REQUIRE(m.inl(kPmTmr) <= 0xffffffu);

    m.qmp("system_reset");
    // the main loop runs the reset after the command returns; PMBASE shows when it has
    // (base 0, RTE (bit 0) reads as 1)
    REQUIRE(test::eventually([&] { return pci.read32(lpc, kPmBase) == 0x1u; },
                             std::chrono::seconds(2)));
    CHECK((pci.read32(lpc, kAcpiCntl) & kAcpiEn) == 0);
    CHECK(m.inl(kPmTmr) == 0xffffffffu); // nothing decodes the port any more
}
