#include "host.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace icemu::cqhci {
namespace {

void put64(std::vector<std::uint8_t>& b, std::size_t off, std::uint64_t v) {
    for (unsigned i = 0; i < 8; ++i) {
        b[off + i] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}

// Attribute bits of task, link and transfer descriptors.
constexpr std::uint64_t kValid = 1u << 0, kEnd = 1u << 1, kInt = 1u << 2;
constexpr std::uint64_t act(unsigned a) {
    return std::uint64_t{a} << 3;
}
constexpr unsigned kActTran = 4, kActTask = 5, kActLink = 6;
constexpr std::uint64_t kDirRead = 1u << 12, kQbar = 1u << 14;

// SDHCI command register: response type 1:0, CRC check 3, index check 4, data present 5.
std::uint16_t command_reg(unsigned index, Resp r, bool data) {
    auto v = static_cast<std::uint16_t>(index << 8);
    switch (r) {
    case Resp::none:
        break;
    case Resp::r2:
        v |= 0x1 | 0x08;
        break;
    case Resp::r3:
        v |= 0x2;
        break;
    case Resp::r1:
        v |= 0x2 | 0x08 | 0x10;
        break;
    case Resp::r1b:
        v |= 0x3 | 0x08 | 0x10;
        break;
    }
    if (data) {
        v |= 0x20;
    }
    return v;
}

// Transfer mode: block count enable 1, read (card to host) 4, multiple blocks 5.
constexpr std::uint16_t kTrnBlkCntEn = 0x02, kTrnRead = 0x10, kTrnMulti = 0x20;
// Present state: buffer write enable 10, buffer read enable 11.
constexpr std::uint32_t kPrnBufWrite = 1u << 10, kPrnBufRead = 1u << 11;
constexpr std::uint32_t kPrnSts = 0x24;

} // namespace

CqhciHost::CqhciHost(qtest::Machine& m, std::uint64_t bar_addr) : m_(m), pci_(m) {
    const auto fns = pci_.find(ufs::kRedHatVendor, kSdhciDevice);
    if (fns.empty()) {
        throw qtest::Error("no sdhci-pci (1b36:0007) on bus 0");
    }
    subsystem_ = pci_.read32(fns[0], 0x2c);
    bar_ = pci_.map_bar(fns[0], 0, bar_addr);
    pci_.enable(fns[0]);
}

void CqhciHost::enable(bool cge, bool dcmd) {
    std::uint32_t cfg =
        bits::kCfgTds128 | (dcmd ? bits::kCfgDcmd : 0u) | (cge ? bits::kCfgCge : 0u);
    wreg(reg::kCfg, cfg);
    wreg(reg::kTdlba, static_cast<std::uint32_t>(kTdl));
    wreg(reg::kTdlbau, static_cast<std::uint32_t>(kTdl >> 32));
    wreg(reg::kSsc2, 1);
    wreg(reg::kIste, 0);
    wreg(reg::kIsge, 0);
    wreg(reg::kCfg, cfg | bits::kCfgEnable);
    if (rreg(reg::kCtl) & bits::kCtlHalt) {
        wreg(reg::kCtl, 0);
    }
    // sdhci_cqe_enable: status and signal enable for CQE (bit 14) and the error bits.
    wsdhci(sdhci::kNorIntStsEn, sdhci::kNisCqe | 0x027f0000u);
    wsdhci(sdhci::kNorIntSigEn, sdhci::kNisCqe | 0x027f0000u);
    const std::uint32_t irqs = bits::kIsTcc | bits::kIsRed | bits::kIsGce | bits::kIsIcce;
    wreg(reg::kIste, irqs);
    wreg(reg::kIsge, irqs);
}

void CqhciHost::put_data(unsigned tag, std::span<const std::uint8_t> bytes) {
    m_.memwrite(data_addr(tag), bytes);
}

std::vector<std::uint8_t> CqhciHost::get_data(unsigned tag, std::size_t len) {
    return m_.memread(data_addr(tag), len);
}

void CqhciHost::prepare(const Task& t) {
    const std::uint64_t slot = kTdl + std::uint64_t{t.tag} * kSlotBytes;
    const std::uint64_t list = kTrans + std::uint64_t{t.tag} * 0x1000;
    std::vector<std::uint8_t> d(kSlotBytes, 0);
    const std::uint64_t w0 = kValid | kEnd | kInt | act(kActTask) | (t.write ? 0 : kDirRead) |
                             (std::uint64_t{t.blocks} << 16) | (std::uint64_t{t.lba} << 32);
    const std::uint64_t w1 = std::uint64_t{t.crypto.dun} | (std::uint64_t{t.crypto.cci} << 32) |
                             (t.crypto.ce ? (1ull << 47) : 0);
    put64(d, 0, w0);
    put64(d, 8, w1);
    put64(d, 16, kValid | act(kActLink) | ((list & 0xffffffffull) << 32));
    put64(d, 24, list >> 32);
    m_.memwrite(slot, d);

    const std::uint64_t total = std::uint64_t{t.blocks} * kBlock;
    std::vector<std::uint8_t> tl;
    std::uint64_t done = 0;
    while (done < total) {
        const std::uint64_t n = std::min<std::uint64_t>(t.seg_bytes, total - done);
        const std::uint64_t addr = data_addr(t.tag) + done;
        std::vector<std::uint8_t> e(16, 0);
        done += n;
        put64(e, 0,
              kValid | (done == total ? kEnd : 0) | act(kActTran) | ((n & 0xffff) << 16) |
                  ((addr & 0xffffffffull) << 32));
        put64(e, 8, addr >> 32);
        tl.insert(tl.end(), e.begin(), e.end());
    }
    m_.memwrite(list, tl);
}

void CqhciHost::prepare_dcmd_flush() {
    const std::uint64_t slot = kTdl + std::uint64_t{kDcmdSlot} * kSlotBytes;
    std::vector<std::uint8_t> d(kSlotBytes, 0);
    // CMD6 SWITCH, R1b, argument: WRITE_BYTE FLUSH_CACHE(32) = 1
    const std::uint32_t arg = (3u << 24) | (32u << 16) | (1u << 8);
    put64(d, 0,
          kValid | kEnd | kInt | act(kActTask) | kQbar | (6ull << 16) | (3ull << 23) |
              (std::uint64_t{arg} << 32));
    put64(d, 16, kEnd);
    m_.memwrite(slot, d);
}

std::uint32_t CqhciHost::wait_tcn(std::uint32_t mask, std::uint32_t stop_is) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
        const std::uint32_t tcn = rreg(reg::kTcn) & mask;
        if (tcn == mask || (rreg(reg::kIs) & stop_is) ||
            std::chrono::steady_clock::now() > deadline) {
            return tcn;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

void CqhciHost::ack(std::uint32_t mask) {
    wreg(reg::kTcn, mask);
    wreg(reg::kIs, bits::kIsTcc);
}

bool CqhciHost::run(const Task& t) {
    prepare(t);
    const std::uint32_t bit = 1u << t.tag;
    ring(bit);
    const bool ok = wait_tcn(bit) == bit;
    if (ok) {
        ack(bit);
    }
    return ok;
}

bool CqhciHost::write(unsigned tag, std::uint32_t lba, std::span<const std::uint8_t> data,
                      Crypto c) {
    put_data(tag, data);
    return run(Task{tag, true, lba, static_cast<std::uint16_t>(data.size() / kBlock), c, 0x10000});
}

std::optional<std::vector<std::uint8_t>> CqhciHost::read(unsigned tag, std::uint32_t lba,
                                                         std::uint16_t blocks, Crypto c) {
    m_.memset(data_addr(tag), std::size_t{blocks} * kBlock, 0xee);
    if (!run(Task{tag, false, lba, blocks, c, 0x10000})) {
        return std::nullopt;
    }
    return get_data(tag, std::size_t{blocks} * kBlock);
}

std::uint32_t CqhciHost::sdhci_wait(std::uint32_t bits) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        const std::uint32_t st = rsdhci(sdhci::kNorIntSts);
        if ((st & bits) != 0 || std::chrono::steady_clock::now() > deadline) {
            return st;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}

namespace {
// Status enables a PIO driver needs: command / transfer complete, buffer ready, the CQE bit,
// command timeout.
constexpr std::uint32_t kPioIrqs = sdhci::kNisCmdCmp | sdhci::kNisTrsCmp | sdhci::kNisWBufRdy |
                                   sdhci::kNisRBufRdy | sdhci::kNisCqe |
                                   (std::uint32_t{sdhci::kEisCmdTimeout} << 16);
} // namespace

std::optional<std::uint32_t> CqhciHost::command(unsigned index, std::uint32_t arg, Resp resp) {
    // Internal clock, its stable bit and the SD clock on; the status bits a driver polls.
    wsdhci(sdhci::kClkCon, 0x0005);
    wsdhci(sdhci::kNorIntStsEn, rsdhci(sdhci::kNorIntStsEn) | kPioIrqs);
    wsdhci(sdhci::kNorIntSts, 0xffff0000u | sdhci::kNisCmdCmp | sdhci::kNisTrsCmp);
    wsdhci(sdhci::kArgument, arg);
    wsdhci(sdhci::kTrnMod, std::uint32_t{command_reg(index, resp, false)} << 16);
    const std::uint32_t st = sdhci_wait(sdhci::kNisCmdCmp | (sdhci::kEisCmdTimeout << 16));
    wsdhci(sdhci::kNorIntSts, 0xffff0000u | sdhci::kNisCmdCmp | sdhci::kNisTrsCmp);
    if ((st >> 16) & sdhci::kEisCmdTimeout || !(st & sdhci::kNisCmdCmp)) {
        return std::nullopt;
    }
    return rsdhci(sdhci::kRsp0);
}

bool CqhciHost::init_card(bool cmdq) {
    return command(mmc::kGoIdle, 0, Resp::none) &&
           command(mmc::kSendOpCond, 0x40ff8080u, Resp::r3) &&
           command(mmc::kAllSendCid, 0, Resp::r2) &&
           command(mmc::kSetRca, mmc::kRca << 16, Resp::r1) &&
           command(mmc::kSelect, mmc::kRca << 16, Resp::r1b) &&
           (!cmdq || command(mmc::kSwitch, mmc::switch_arg(mmc::kExtCsdCmdqModeEn, 1), Resp::r1b));
}

void CqhciHost::data_setup(std::uint16_t blocks) {
    wsdhci(sdhci::kClkCon, 0x0005);
    wsdhci(sdhci::kNorIntStsEn, rsdhci(sdhci::kNorIntStsEn) | kPioIrqs);
    wsdhci(sdhci::kNorIntSts, 0xffff0000u | 0x3fu);
    wsdhci(sdhci::kBlkSize, kBlock | (std::uint32_t{blocks} << 16));
}

std::optional<std::vector<std::uint8_t>> CqhciHost::pio_read(unsigned index, std::uint32_t arg,
                                                             std::uint16_t blocks) {
    data_setup(blocks);
    wsdhci(sdhci::kArgument, arg);
    const std::uint16_t trn = kTrnBlkCntEn | kTrnRead | (blocks > 1 ? kTrnMulti : 0);
    wsdhci(sdhci::kTrnMod, (std::uint32_t{command_reg(index, Resp::r1, true)} << 16) | trn);
    const std::uint32_t st = sdhci_wait(sdhci::kNisCmdCmp | (sdhci::kEisCmdTimeout << 16));
    if ((st >> 16) & sdhci::kEisCmdTimeout || !(st & sdhci::kNisCmdCmp)) {
        return std::nullopt;
    }
    std::vector<std::uint8_t> out;
    out.reserve(std::size_t{blocks} * kBlock);
    for (unsigned b = 0; b < blocks; ++b) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!(m_.readl(bar_.addr + kPrnSts) & kPrnBufRead)) {
            if (std::chrono::steady_clock::now() > deadline) {
                return std::nullopt;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        for (unsigned i = 0; i < kBlock / 4; ++i) {
            const std::uint32_t dw = rsdhci(sdhci::kBData);
            for (unsigned k = 0; k < 4; ++k) {
                out.push_back(static_cast<std::uint8_t>(dw >> (8 * k)));
            }
        }
    }
    const std::uint32_t end = sdhci_wait(sdhci::kNisTrsCmp);
    wsdhci(sdhci::kNorIntSts, 0xffff0000u | 0x3fu);
    if (!(end & sdhci::kNisTrsCmp)) {
        return std::nullopt;
    }
    return out;
}

bool CqhciHost::pio_write(unsigned index, std::uint32_t arg, std::span<const std::uint8_t> data) {
    const auto blocks = static_cast<std::uint16_t>(data.size() / kBlock);
    data_setup(blocks);
    wsdhci(sdhci::kArgument, arg);
    const std::uint16_t trn = kTrnBlkCntEn | (blocks > 1 ? kTrnMulti : 0);
    wsdhci(sdhci::kTrnMod, (std::uint32_t{command_reg(index, Resp::r1, true)} << 16) | trn);
    const std::uint32_t st = sdhci_wait(sdhci::kNisCmdCmp | (sdhci::kEisCmdTimeout << 16));
    if ((st >> 16) & sdhci::kEisCmdTimeout || !(st & sdhci::kNisCmdCmp)) {
        return false;
    }
    for (unsigned b = 0; b < blocks; ++b) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!(m_.readl(bar_.addr + kPrnSts) & kPrnBufWrite)) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(100));
        }
        for (unsigned i = 0; i < kBlock / 4; ++i) {
            const std::size_t o = std::size_t{b} * kBlock + 4 * i;
            wsdhci(sdhci::kBData, std::uint32_t{data[o]} | std::uint32_t{data[o + 1]} << 8 |
                                      std::uint32_t{data[o + 2]} << 16 |
                                      std::uint32_t{data[o + 3]} << 24);
        }
    }
    const std::uint32_t end = sdhci_wait(sdhci::kNisTrsCmp);
    wsdhci(sdhci::kNorIntSts, 0xffff0000u | 0x3fu);
    return (end & sdhci::kNisTrsCmp) != 0;
}

CqhciHost::Recovery CqhciHost::recover() {
    Recovery r;
    const std::uint32_t irqs = bits::kIsTcc | bits::kIsRed | bits::kIsGce | bits::kIsIcce;
    // cqhci_irq acknowledged the error status already
    wreg(reg::kIs, rreg(reg::kIs));
    // cqhci_recovery_start: halt (ISTE = ISGE = HAC while waiting), SDHCI CMD and DATA reset
    wreg(reg::kIste, bits::kIsHac);
    wreg(reg::kIsge, bits::kIsHac);
    wreg(reg::kCtl, rreg(reg::kCtl) | bits::kCtlHalt);
    r.halted = (rreg(reg::kCtl) & bits::kCtlHalt) != 0;
    wreg(reg::kIste, 0);
    wreg(reg::kIsge, 0);
    sdhci_reset(sdhci::kResetCmd);
    sdhci_reset(sdhci::kResetData);
    // mmc_cqe_recovery: CMD12, then CMD48 "discard entire queue"
    r.cmd12 = command(mmc::kStop, 0, Resp::r1b);
    r.cmd48 = command(mmc::kTaskMgmt, 1, Resp::r1b);
    // cqhci_recovery_finish: halt, clear all tasks, disable / enable, halt
    wreg(reg::kIste, bits::kIsTcl);
    wreg(reg::kIsge, bits::kIsTcl);
    wreg(reg::kCtl, rreg(reg::kCtl) | bits::kCtlClearAll);
    r.cleared = (rreg(reg::kCtl) & bits::kCtlClearAll) == 0 && rreg(reg::kTdbr) == 0;
    wreg(reg::kIste, 0);
    wreg(reg::kIsge, 0);
    const std::uint32_t cfg = rreg(reg::kCfg);
    wreg(reg::kCfg, cfg & ~bits::kCfgEnable);
    wreg(reg::kCfg, cfg | bits::kCfgEnable);
    wreg(reg::kIs, bits::kIsHac | bits::kIsTcl);
    wreg(reg::kIste, irqs);
    wreg(reg::kIsge, irqs);
    // the next request finds the CQE off and unhalts it (cqhci_request)
    wreg(reg::kCtl, 0);
    return r;
}

void CqhciHost::write_keyslot(unsigned slot, std::span<const std::uint8_t, 64> key,
                              std::uint32_t dword16) {
    const std::uint32_t base = cfg_offset(slot);
    wreg(base + 0x40, 0);
    for (unsigned i = 0; i < 16; ++i) {
        const std::uint32_t dw = std::uint32_t{key[4 * i]} | std::uint32_t{key[4 * i + 1]} << 8 |
                                 std::uint32_t{key[4 * i + 2]} << 16 |
                                 std::uint32_t{key[4 * i + 3]} << 24;
        wreg(base + 4 * i, dw);
    }
    wreg(base + 0x44, 0);
    wreg(base + 0x40, dword16);
}

void CqhciHost::program_keyslot(unsigned slot, std::span<const std::uint8_t, 64> key,
                                std::uint32_t du_bytes, std::uint8_t capidx) {
    write_keyslot(slot, key, ((du_bytes / 512) & 0xff) | (std::uint32_t{capidx} << 8) | (1u << 31));
}

void CqhciHost::evict_keyslot(unsigned slot) {
    const std::array<std::uint8_t, 64> zero{};
    write_keyslot(slot, zero, 0);
}

} // namespace icemu::cqhci
