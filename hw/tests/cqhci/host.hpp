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
constexpr std::uint32_t kBlkSize = 0x04, kArgument = 0x08, kTrnMod = 0x0c, kRsp0 = 0x10,
                        kBData = 0x20, kClkCon = 0x2c, kSwRst = 0x2f, kNorIntSts = 0x30,
                        kNorIntStsEn = 0x34, kNorIntSigEn = 0x38, kCapab = 0x40;
constexpr std::uint16_t kNisCmdCmp = 0x0001, kNisTrsCmp = 0x0002, kNisWBufRdy = 0x0010,
                        kNisRBufRdy = 0x0020, kNisCqe = 0x4000;
constexpr std::uint16_t kEisCmdTimeout = 0x0001;
constexpr std::uint8_t kResetAll = 0x01, kResetCmd = 0x02, kResetData = 0x04;
} // namespace sdhci

// eMMC commands on the SDHCI bus (JESD84-B51 numbering).
namespace mmc {
constexpr unsigned kGoIdle = 0, kSendOpCond = 1, kAllSendCid = 2, kSetRca = 3, kSwitch = 6,
                   kSelect = 7, kStop = 12, kStatus = 13, kQueueParams = 44, kQueueAddr = 45,
                   kExecRead = 46, kExecWrite = 47, kTaskMgmt = 48;
constexpr std::uint32_t kRca = 1;
constexpr std::uint32_t kStatusIllegal = 1u << 22;
constexpr unsigned status_state(std::uint32_t r1) {
    return (r1 >> 9) & 0xf;
}
constexpr unsigned kStateTran = 4;
// CMD6 WRITE_BYTE of EXT_CSD[index] = value
constexpr std::uint32_t switch_arg(unsigned index, unsigned value) {
    return (3u << 24) | (index << 16) | (value << 8);
}
constexpr unsigned kExtCsdCmdqModeEn = 15;
} // namespace mmc

enum class Resp { none, r1, r1b, r2, r3 };

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
    std::uint64_t bar_addr() const { return bar_.addr; }
    // Guest address of tag's transfer descriptor list (16-byte entries, as prepare() writes).
    std::uint64_t transfer_list(unsigned tag) const { return kTrans + std::uint64_t{tag} * 0x1000; }
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

    // ---- The SDHCI side: commands to the card on the legacy bus (PIO), resets ----
    // Issues one command; the 32-bit response (R1/R1b/R3; R2: bits 31:0), or nullopt when the
    // host reported a command timeout (no response: an illegal command, or a dead host).
    std::optional<std::uint32_t> command(unsigned index, std::uint32_t arg, Resp resp);
    // CMD0, CMD1, CMD2, CMD3 (RCA 1), CMD7: the card in the transfer state; with cmdq also
    // CMD6 CMDQ_MODE_EN=1 (mmc_cmdq_enable). False if any step failed.
    bool init_card(bool cmdq);
    // A data command in PIO mode, 512-byte blocks: CMD46/CMD47 (execute a queued task) etc.
    std::optional<std::vector<std::uint8_t>> pio_read(unsigned index, std::uint32_t arg,
                                                      std::uint16_t blocks);
    bool pio_write(unsigned index, std::uint32_t arg, std::span<const std::uint8_t> data);
    // Software Reset register (SDHCI 0x2f): kResetAll / kResetCmd / kResetData.
    void sdhci_reset(std::uint8_t mask) { m_.writeb(bar_.addr + sdhci::kSwRst, mask); }

    // Linux's CQE recovery (mmc_cqe_recovery, cqhci_recovery_start/finish), step by step:
    // halt, SDHCI CMD+DATA reset, CMD12, CMD48 "discard queue", halt, clear all tasks,
    // CFG.ENABLE 0 -> 1, halt, W1C HAC|TCL, ISTE = ISGE = TCC|RED|GCE|ICCE, unhalt.
    // Returns the CMD48 response (nullopt: it timed out, Linux would reset the card).
    struct Recovery {
        bool halted = false;
        std::optional<std::uint32_t> cmd12;
        std::optional<std::uint32_t> cmd48;
        bool cleared = false;
    };
    Recovery recover();

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

    std::uint32_t sdhci_wait(std::uint32_t bits);
    void data_setup(std::uint16_t blocks);

    qtest::Machine& m_;
    ufs::PciConfig pci_;
    ufs::PciConfig::Bar bar_;
    std::uint32_t subsystem_ = 0;
};

} // namespace icemu::cqhci
