#include "pci.hpp"

namespace icemu::ufs {
namespace {

constexpr std::uint16_t kConfigAddress = 0xcf8;
constexpr std::uint16_t kConfigData = 0xcfc;
constexpr std::uint8_t kRegId = 0x00;
constexpr std::uint8_t kRegCommand = 0x04;
constexpr std::uint8_t kRegBar0 = 0x10;
constexpr std::uint32_t kCommandMemory = 0x2;
constexpr std::uint32_t kCommandMaster = 0x4;

std::uint32_t config_address(PciFunction f, std::uint8_t reg) {
    return 0x80000000u | (std::uint32_t{f.bus} << 16) | (std::uint32_t{f.devfn} << 8) |
           (reg & 0xfcu);
}

} // namespace

std::uint32_t PciConfig::read32(PciFunction f, std::uint8_t reg) {
    m_.outl(kConfigAddress, config_address(f, reg));
    return m_.inl(kConfigData);
}

void PciConfig::write32(PciFunction f, std::uint8_t reg, std::uint32_t value) {
    m_.outl(kConfigAddress, config_address(f, reg));
    m_.outl(kConfigData, value);
}

std::vector<PciFunction> PciConfig::find(std::uint16_t vendor, std::uint16_t device) {
    std::vector<PciFunction> out;
    const std::uint32_t want = (std::uint32_t{device} << 16) | vendor;
    for (unsigned slot = 0; slot < 32; ++slot) {
        const PciFunction f{0, static_cast<std::uint8_t>(slot << 3)};
        if (read32(f, kRegId) == want) {
            out.push_back(f);
        }
    }
    return out;
}

PciConfig::Bar PciConfig::map_bar(PciFunction f, int n, std::uint64_t addr) {
    const auto reg = static_cast<std::uint8_t>(kRegBar0 + 4 * n);
    const std::uint32_t orig = read32(f, reg);
    if (orig & 1u) {
        throw qtest::Error("BAR" + std::to_string(n) + " is an I/O BAR");
    }
    Bar bar;
    bar.is_64bit = ((orig >> 1) & 3u) == 2u;
    write32(f, reg, 0xffffffffu);
    std::uint64_t mask = read32(f, reg) & ~0xfull;
    if (bar.is_64bit) {
        const auto upper = static_cast<std::uint8_t>(reg + 4);
        write32(f, upper, 0xffffffffu);
        mask |= std::uint64_t{read32(f, upper)} << 32;
        write32(f, upper, static_cast<std::uint32_t>(addr >> 32));
    } else {
        mask |= 0xffffffff00000000ull;
    }
    bar.size = ~mask + 1;
    if (bar.size == 0 || (addr & (bar.size - 1)) != 0) {
        throw qtest::Error("BAR address not aligned to its size");
    }
    write32(f, reg, static_cast<std::uint32_t>(addr));
    bar.addr = addr;
    return bar;
}

void PciConfig::enable(PciFunction f) {
    const std::uint32_t cmd = read32(f, kRegCommand) & 0xffffu;
    write32(f, kRegCommand, cmd | kCommandMemory | kCommandMaster);
}

} // namespace icemu::ufs
