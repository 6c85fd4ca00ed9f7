// PCI configuration mechanism #1 over qtest port I/O, and BAR assignment without a BIOS.
#pragma once

#include <cstdint>
#include <vector>

#include "qtest/machine.hpp"

namespace icemu::ufs {

struct PciFunction {
    std::uint8_t bus = 0;
    std::uint8_t devfn = 0;
};

class PciConfig {
public:
    explicit PciConfig(qtest::Machine& m) : m_(m) {}

    std::uint32_t read32(PciFunction f, std::uint8_t reg);
    void write32(PciFunction f, std::uint8_t reg, std::uint32_t value);

    // Every function on bus 0 with this vendor:device id, in devfn order.
    std::vector<PciFunction> find(std::uint16_t vendor, std::uint16_t device);

    struct Bar {
        std::uint64_t addr = 0;
        std::uint64_t size = 0;
        bool is_64bit = false;
    };
    // Sizes BAR n, programs it to addr, and returns what was learned.
    Bar map_bar(PciFunction f, int n, std::uint64_t addr);
    // COMMAND |= MEM | BUS MASTER.
    void enable(PciFunction f);

private:
    qtest::Machine& m_;
};

constexpr std::uint16_t kRedHatVendor = 0x1b36;
constexpr std::uint16_t kUfsDevice = 0x0013;

} // namespace icemu::ufs
