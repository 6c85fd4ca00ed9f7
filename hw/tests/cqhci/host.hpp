// A CQHCI driver over qtest for the device tests: finds QEMU's sdhci-pci with cqhci=on (BAR0 =
// SDHCI registers, CQHCI at +0x200), builds the task descriptor list in guest RAM the way
// Linux's cqhci driver does with dma64 and 128-bit task descriptors (slot = 16-byte task
// descriptor + 16-byte link descriptor; 16-byte transfer descriptors, one list per tag), rings
// the doorbell and polls TCN. Crypto helpers: CCAP / x-CRYPTOCAP and the 19-write keyslot
// sequence of cqhci-crypto.c (dword16 = 0, dwords 0-15, dword17, dword16 last).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "qtest/machine.hpp"
#include "ufs/pci.hpp"

namespace icemu::cqhci {

constexpr std::uint16_t kSdhciDevice = 0x0007;
constexpr std::uint16_t kCqhciSubsystem = 0x0100;
constexpr std::uint32_t kCqhciOffset = 0x200;
constexpr unsigned kSlots = 32;
constexpr unsigned kDcmdSlot = 31;
constexpr std::uint32_t kBlock = 512;

namespace reg {
constexpr std::uint32_t kVer = 0x00, kCap = 0x04, kCfg = 0x08, kCtl = 0x0c, kIs = 0x10,
                        kIste = 0x14, kIsge = 0x18, kTdlba = 0x20, kTdlbau = 0x24, kTdbr = 0x28,
                        kTcn = 0x2c, kTclr = 0x38, kTdpe = 0x3c, kSsc1 = 0x40, kSsc2 = 0x44,
                        kCrdct = 0x48, kTerri = 0x54, kCcap = 0x100, kCryptoCap0 = 0x104;
} // namespace reg

namespace bits {
constexpr std::uint32_t kCapCs = 1u << 28;
constexpr std::uint32_t kCfgEnable = 1u << 0, kCfgCge = 1u << 1, kCfgTds128 = 1u << 8,
                        kCfgDcmd = 1u << 12;
constexpr std::uint32_t kCtlHalt = 1u << 0, kCtlClearAll = 1u << 8;
constexpr std::uint32_t kIsHac = 1u << 0, kIsTcc = 1u << 1, kIsRed = 1u << 2, kIsTcl = 1u << 3,
                        kIsGce = 1u << 4, kIsIcce = 1u << 5;
constexpr std::uint32_t kTerriDValid = 1u << 31;
} // namespace bits

// SDHCI registers used here (offsets in BAR0).
namespace sdhci {
constexpr std::uint32_t kNorIntSts = 0x30, kNorIntStsEn = 0x34, kNorIntSigEn = 0x38, kCapab = 0x40;
constexpr std::uint16_t kNisCqe = 0x4000;
} // namespace sdhci

struct Crypto {
    bool ce = false;
    std::uint8_t cci = 0;
    std::uint32_t dun = 0;
};

struct Task {
    unsigned tag = 0;
    bool write = false;
    std::uint32_t lba = 0;    // 512-byte sectors
    std::uint16_t blocks = 1; // 512-byte blocks
    Crypto crypto;
    std::uint32_t seg_bytes = 0x10000; // bytes per transfer descriptor (last one shorter)
};

class CqhciHost {
public:
    explicit CqhciHost(qtest::Machine& m, std::uint64_t bar_addr = 0xe0000000ull);

    std::uint64_t bar_size() const { return bar_.size; }
    std::uint32_t subsystem() const { return subsystem_; }

    std::uint32_t rreg(std::uint32_t off) { return m_.readl(bar_.addr + kCqhciOffset + off); }
    void wreg(std::uint32_t off, std::uint32_t v) { m_.writel(bar_.addr + kCqhciOffset + off, v); }
    std::uint32_t rsdhci(std::uint32_t off) { return m_.readl(bar_.addr + off); }
    void wsdhci(std::uint32_t off, std::uint32_t v) { m_.writel(bar_.addr + off, v); }

    // Linux's __cqhci_enable: CFG (TDS 128, DCMD, crypto), TDLBA, SSC2, ENABLE, unhalt, then
    // ISTE = ISGE = TCC|RED|GCE|ICCE. SDHCI NORINTSTSEN/SIGEN bit 14 on.
    void enable(bool crypto_general_enable, bool dcmd = true);

    // Guest buffer for a tag's data (1 MiB each).
    std::uint64_t data_addr(unsigned tag) const { return kData + std::uint64_t{tag} * kDataStride; }
    void put_data(unsigned tag, std::span<const std::uint8_t> bytes);
    std::vector<std::uint8_t> get_data(unsigned tag, std::size_t len);

    // Writes the task + link + transfer descriptors for t (does not ring).
    void prepare(const Task& t);
    void prepare_dcmd_flush();
    void ring(std::uint32_t mask) { wreg(reg::kTdbr, mask); }
    // Polls until TCN has all of mask (or an error bit shows); returns TCN & mask.
    std::uint32_t wait_tcn(std::uint32_t mask,
                           std::uint32_t stop_is = bits::kIsRed | bits::kIsGce | bits::kIsIcce);
    // Completes: W1C TCN and IS.TCC.
    void ack(std::uint32_t mask);

    // One task, start to finish. Returns true if it completed (TCN bit set).
    bool run(const Task& t);
    bool write(unsigned tag, std::uint32_t lba, std::span<const std::uint8_t> data, Crypto c = {});
    std::optional<std::vector<std::uint8_t>> read(unsigned tag, std::uint32_t lba,
                                                  std::uint16_t blocks, Crypto c = {});

    // Crypto registers.
    unsigned keyslots() { return ((rreg(reg::kCcap) >> 8) & 0xff) + 1; }
    std::uint32_t cfg_offset(unsigned slot) {
        return ((rreg(reg::kCcap) >> 24) & 0xff) * 0x100 + slot * 0x80;
    }
    void write_keyslot(unsigned slot, std::span<const std::uint8_t, 64> cryptokey,
                       std::uint32_t dword16);
    void program_keyslot(unsigned slot, std::span<const std::uint8_t, 64> cryptokey,
                         std::uint32_t du_bytes, std::uint8_t capidx = 0);
    void evict_keyslot(unsigned slot);

private:
    static constexpr std::uint64_t kTdl = 0x00100000;
    static constexpr std::uint64_t kTrans = 0x00200000; // 4 KiB of descriptors per tag
    static constexpr std::uint64_t kData = 0x01000000;
    static constexpr std::uint64_t kDataStride = 0x00100000;
    static constexpr unsigned kSlotBytes = 32; // 16-byte task + 16-byte link descriptor

    qtest::Machine& m_;
    ufs::PciConfig pci_;
    ufs::PciConfig::Bar bar_;
    std::uint32_t subsystem_ = 0;
};

} // namespace icemu::cqhci
